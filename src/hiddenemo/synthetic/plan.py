"""The plan of a synthetic dataset: who is in which video, its label and split, its length and its
timed cue episodes. Everything else (the figure, the pixels, the OpenPose JSON, the files) is drawn
from a plan.

Labels are indices into `CLASSES`, the workspace's class order (`hiddenemo.data.imigue.CLASSES`:
0 = Lose, 1 = Win), spelled as iMiGUE's `win_or_lose` column spells them. The cue-rich class is Lose.

With `levels` > 2 (a task of more than two classes) each video has a hidden level 0 .. levels-1
(`LEVEL_NAMES`: calm, tense, stressed, ...) whose cue rates lie evenly between Win's (level 0) and
Lose's (the top level): graded cues, so neighbouring levels are harder to tell apart than the ends.
Its two-class projection (the upper half of the levels = Lose) is what iMiGUE's format can carry.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hiddenemo.data.imigue import CLASSES as WORKSPACE_CLASSES

FPS = 25
CLASSES = tuple(name.capitalize() for name in WORKSPACE_CLASSES)     # ("Lose", "Win"), iMiGUE's spelling
LOSE, WIN = CLASSES.index("Lose"), CLASSES.index("Win")


@dataclass(frozen=True)
class Cue:
    """A behaviour inserted as timed episodes (what the generator puts in; the teacher's `Cue` in
    hiddenemo.teacher.cues is what a rule finds)."""
    name: str
    rate_win: float                  # episodes per 10 s for a Win video (before person/video variation)
    rate_lose: float                 # the same for a Lose video
    seconds: tuple[float, float]     # episode duration range
    gesture: int | None              # iMiGUE class id written to the labels file; None = not annotated
    keypoints: int                   # visibility in each modality: 0 none, 1 faint, 2 clear
    pixels: int
    annotations: int
    teacher: bool                    # read by a keypoint-rule teacher (hand-to-face, arms, gaze, ...)
    track: str = "head"              # episodes on one track never overlap (arms cannot do two things)

    def rate(self, stress: float) -> float:
        """Episodes per 10 s for a video of cue-richness `stress`: 0 = Win, 1 = Lose, between for a level."""
        if stress in (0.0, 1.0):
            return self.rate_lose if stress else self.rate_win
        return self.rate_win + stress * (self.rate_lose - self.rate_win)


# Annotated cues carry the id of the nearest official iMiGUE class (hiddenemo.data.imigue.TAXONOMY):
# 8 touching or scratching facial parts, 17 folding arms, 29 pressing lips, 31 shaking shoulders,
# 99 illustrative body language. iMiGUE has no nodding class, so nods are not annotated.
CUES: tuple[Cue, ...] = (
    Cue("talk_gesture", 1.6, 1.6, (1.0, 2.4), 99, 2, 2, 2, False, "arms"),
    Cue("face_touch", 0.7, 0.9, (0.8, 2.0), 8, 2, 2, 2, True, "arms"),
    Cue("arm_fold", 0.35, 0.7, (1.6, 3.6), 17, 2, 2, 2, True, "arms"),
    Cue("gaze_away", 0.8, 1.4, (0.6, 1.6), None, 2, 1, 0, True, "eyes"),
    Cue("smile", 1.2, 0.6, (0.8, 2.0), None, 2, 2, 0, True, "mouth"),
    Cue("lip_press", 0.4, 2.0, (0.6, 1.4), 29, 1, 1, 2, False, "lips"),
    Cue("flush", 0.4, 2.0, (1.2, 3.0), None, 0, 2, 0, False, "skin"),
    Cue("clench", 0.4, 2.0, (1.0, 2.6), None, 2, 0, 0, False, "fingers"),
    Cue("nod", 1.0, 1.0, (0.4, 0.9), None, 2, 2, 0, True, "head"),
    Cue("shrug", 0.5, 0.5, (0.5, 1.0), 31, 2, 2, 2, True, "shoulders"),
    Cue("blink", 3.0, 3.0, (0.10, 0.16), None, 2, 1, 0, True, "lids"),
)
CUE_NAMES = tuple(c.name for c in CUES)
FIDGET_LOSE_FACTOR = 1.15           # continuous hand/body jitter, keypoints (dynamics) and teacher
ANNOTATOR_RECALL = 0.85             # share of annotatable episodes the annotator writes down

LEVEL_NAMES = {3: ("calm", "tense", "stressed"), 4: ("calm", "uneasy", "tense", "stressed"),
               5: ("calm", "uneasy", "tense", "stressed", "distressed")}


def level_names(levels: int) -> list[str]:
    """The names of `levels` graded levels, from the calmest."""
    if levels not in LEVEL_NAMES:
        raise ValueError(f"levels must be one of {sorted(LEVEL_NAMES)} (or 2 for Win/Lose), got {levels}")
    return list(LEVEL_NAMES[levels])


NATIONALITIES = ("Australia", "Spain", "United States", "France", "China", "Croatia", "Germany",
                 "Japan", "Canada", "Serbia", "Czech Republic", "Argentina")
SKIN = ((189, 214, 240), (160, 190, 225), (120, 160, 205), (90, 125, 170), (60, 90, 130))   # BGR
HAIR = ((30, 30, 35), (40, 60, 100), (60, 110, 170), (25, 25, 25), (120, 150, 190))
SHIRT = ((170, 90, 30), (40, 40, 40), (230, 230, 230), (60, 60, 160), (60, 130, 60), (150, 60, 110))
BACKDROP = ((140, 80, 20), (120, 60, 10), (90, 90, 90), (150, 110, 40))


@dataclass
class Subject:
    id: str
    gender: str
    nationality: str
    skin: tuple
    hair: tuple
    shirt: tuple
    dx: float                        # seat position and body scale
    scale: float
    habits: dict                     # cue name -> personal rate multiplier
    fidget: float


@dataclass
class Episode:
    """One inserted cue episode, in frames (the teacher's `Episode` is a detection, in seconds)."""
    cue: str
    start: int                       # frames, inclusive
    end: int                         # frames, exclusive
    side: int = 1                    # which hand / which way (+1 = image right)
    annotated: bool = False


@dataclass
class VideoPlan:
    video_id: str
    subject: Subject
    label: int                       # index into CLASSES (LOSE or WIN); with levels, the two-class projection
    split: str                       # train (labelled) / test (target: label withheld)
    n_frames: int
    fidget: float
    backdrop: tuple
    episodes: list[Episode] = field(default_factory=list)
    level: int | None = None         # with levels > 2: the hidden level, 0 = calmest
    top_level: int = 1               # levels - 1

    @property
    def stress(self) -> float:
        """Cue-richness in [0, 1]: 0 = Win, 1 = Lose; a level's place between them."""
        if self.level is None:
            return 1.0 if self.label == LOSE else 0.0
        return self.level / self.top_level


def plan_dataset(seed: int, n_videos: int, n_frames: int, n_subjects: int | None = None,
                 lose_share: float = 0.25, target_share: float = 0.3, levels: int = 2) -> list[VideoPlan]:
    """Who is in which video, its label and split, its length and its timed cue episodes; with
    `levels` > 2, each video's hidden level (about equally many of each per split) instead of Win/Lose."""
    if n_videos < 4:
        raise ValueError(f"need at least 4 videos (2 labelled, 2 target), got {n_videos}")
    rng = np.random.default_rng([seed, 0])
    n_subjects = min(n_subjects or max(2, round(n_videos / 3)), n_videos)
    subjects = [_subject(np.random.default_rng([seed, 1, s]), f"{s + 1}") for s in range(n_subjects)]

    # Subjects with several videos, cross-subject target split (as MiGA's), about 3:1 Win:Lose.
    owner = np.sort(np.concatenate([np.arange(n_subjects), rng.integers(0, n_subjects, n_videos - n_subjects)]))
    target_subjects = _target_subjects(rng, owner, target_share)
    split = np.where(np.isin(owner, target_subjects), "test", "train")
    labels = _labels(rng, split, lose_share)
    level = _levels(np.random.default_rng([seed, 4]), split, levels) if levels > 2 else None
    if level is not None:
        labels = np.where(level >= levels / 2, LOSE, WIN)

    lengths = np.clip(n_frames * rng.lognormal(0.0, 0.35, n_videos), 0.5 * n_frames, 2.2 * n_frames)
    plans = []
    for v in range(n_videos):
        vrng = np.random.default_rng([seed, 2, v])
        subject = subjects[owner[v]]
        plan = VideoPlan(video_id=str(v + 1), subject=subject, label=int(labels[v]), split=str(split[v]),
                         n_frames=max(int(lengths[v]), 30), backdrop=BACKDROP[vrng.integers(len(BACKDROP))],
                         fidget=0.0, level=None if level is None else int(level[v]), top_level=max(levels - 1, 1))
        plan.fidget = subject.fidget * FIDGET_LOSE_FACTOR ** plan.stress * float(vrng.lognormal(0, 0.2))
        plan.episodes = _episodes(vrng, plan)
        plans.append(plan)
    return plans


def _labels(rng: np.random.Generator, split: np.ndarray, lose_share: float) -> np.ndarray:
    """Each part (train, test) about `lose_share` Lose, with at least one Lose and one Win."""
    labels = np.full(len(split), WIN, dtype=int)
    for part in ("train", "test"):
        idx = np.flatnonzero(split == part)
        n_lose = min(max(1, round(len(idx) * lose_share)), len(idx) - 1) if len(idx) > 1 else 0
        labels[rng.choice(idx, n_lose, replace=False)] = LOSE
    return labels


def _levels(rng: np.random.Generator, split: np.ndarray, levels: int) -> np.ndarray:
    """Each part (train, test) split about evenly over the levels, in random order."""
    out = np.zeros(len(split), dtype=int)
    for part in ("train", "test"):
        idx = np.flatnonzero(split == part)
        out[idx] = rng.permutation(np.arange(len(idx)) % levels)
    return out


def _subject(rng: np.random.Generator, subject_id: str) -> Subject:
    return Subject(id=subject_id, gender=str(rng.choice(["F", "M"])),
                   nationality=str(rng.choice(NATIONALITIES)),
                   skin=SKIN[rng.integers(len(SKIN))], hair=HAIR[rng.integers(len(HAIR))],
                   shirt=SHIRT[rng.integers(len(SHIRT))], dx=float(rng.uniform(-10, 10)),
                   scale=float(rng.uniform(0.92, 1.08)),
                   # Personal habits blur the class signal: a rate is the class rate times this.
                   habits={c.name: float(rng.lognormal(0.0, 0.45)) for c in CUES},
                   fidget=float(rng.lognormal(0.0, 0.35)))


def _target_subjects(rng: np.random.Generator, owner: np.ndarray, share: float) -> np.ndarray:
    """Whole subjects go to the target split until it holds about `share` of the videos."""
    order = rng.permutation(np.unique(owner))
    counts = np.bincount(owner)
    chosen, total = [], 0
    for s in order:
        if total >= share * len(owner) and len(chosen) >= 1:
            break
        if total + counts[s] > len(owner) - 2:       # keep at least two labelled videos
            continue
        chosen.append(s)
        total += counts[s]
    return np.array(chosen)


def _episodes(rng: np.random.Generator, plan: VideoPlan) -> list[Episode]:
    """Poisson episodes per cue; episodes on one track never overlap; every video talks with its hands
    at least once (so every video has annotations, as in iMiGUE)."""
    seconds = plan.n_frames / FPS
    busy: dict[str, np.ndarray] = {}
    episodes = []
    for cue in CUES:
        rate = cue.rate(plan.stress) * plan.subject.habits[cue.name]
        n = rng.poisson(rate * rng.lognormal(0, 0.25) * seconds / 10)
        if cue.name == "talk_gesture":
            n = max(n, 1)
        track = busy.setdefault(cue.track, np.zeros(plan.n_frames, dtype=bool))
        for _ in range(n):
            length = int(rng.uniform(*cue.seconds) * FPS)
            for _attempt in range(8):
                start = int(rng.integers(0, max(plan.n_frames - length, 1)))
                end = min(start + length, plan.n_frames)
                if not track[max(start - 5, 0):end + 5].any():
                    track[start:end] = True
                    episodes.append(Episode(cue.name, start, end, side=int(rng.choice([-1, 1])),
                                            annotated=cue.gesture is not None
                                            and bool(rng.random() < ANNOTATOR_RECALL)))
                    break
    if not any(e.annotated for e in episodes):
        # iMiGUE lists a video's label only on its annotation rows: an unannotated video would lose it.
        next(e for e in episodes if e.cue == "talk_gesture").annotated = True
    return sorted(episodes, key=lambda e: (e.start, e.cue))


def envelopes(plan: VideoPlan) -> dict[str, np.ndarray]:
    """Per cue, its activation (T,) in [0, 1] with 0.2 s ramps (blinks: instant); plus the signed
    side per frame under the key `<cue>.side`."""
    t = np.arange(plan.n_frames)
    env = {c.name: np.zeros(plan.n_frames, dtype=np.float32) for c in CUES}
    for e in plan.episodes:
        ramp = 1.0 if e.cue == "blink" else max(min(5.0, (e.end - e.start) / 3), 1.0)
        a = np.clip(np.minimum(t - e.start + 1, e.end - t) / ramp, 0, 1).astype(np.float32)
        env[e.cue] = np.maximum(env[e.cue], a)
        side = env.setdefault(f"{e.cue}.side", np.zeros(plan.n_frames, dtype=np.float32))
        side[e.start:e.end] = e.side
    return env
