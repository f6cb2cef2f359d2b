"""The behaviour teacher's cue detectors, each on a keypoint sequence built to contain that cue (and
nothing else), then the verdict, the CLI run, synthetic data and a real OpenPose sequence."""
from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hiddenemo.data.manifest import DatasetInfo, write_manifest
from hiddenemo.data.store import Store
from hiddenemo.teacher import cues as C
from hiddenemo.teacher.behaviour import judge

FPS = 25.0
T = 500                      # 20 s
A, B = 200, 260              # the cue's window: 8.0-10.4 s
FACE_C, HW, HH = np.array([0.5, 0.2]), 0.08, 0.1


def face_template() -> np.ndarray:
    """70 face points (68 landmarks + 2 pupils) in units of the face's half-width / half-height."""
    from hiddenemo.synthetic.figure import FACE
    return np.asarray(FACE[:, :2], dtype=np.float32)


def neutral(seed: int = 0, noise: float = 0.0015, n: int = T) -> np.ndarray:
    """(T, 137, 3) a seated person facing the camera, box-normalised, with small keypoint noise."""
    xy = np.full((137, 2), np.nan, np.float32)
    body = {0: (0.5, 0.22), 1: (0.5, 0.42), 2: (0.32, 0.45), 3: (0.27, 0.68), 4: (0.38, 0.88), 5: (0.68, 0.45),
            6: (0.73, 0.68), 7: (0.62, 0.88), 15: (0.47, 0.18), 16: (0.53, 0.18), 17: (0.42, 0.2), 18: (0.58, 0.2)}
    for i, p in body.items():
        xy[i] = p
    xy[25:95] = FACE_C + face_template() * (HW, HH)
    xy[95:116] = hand_at(xy[7])
    xy[116:137] = hand_at(xy[4])
    rng = np.random.default_rng(seed)
    seq = np.repeat(xy[None], n, 0) + rng.normal(0, noise, (n, 137, 2)).astype(np.float32)
    conf = np.where(np.isfinite(seq).all(-1), 0.8, 0.0)[..., None]
    return np.concatenate([seq, conf], -1).astype(np.float32)


def hand_at(wrist) -> np.ndarray:
    """21 hand points: the wrist, then four joints of five fingers pointing up."""
    fingers = [np.asarray(wrist) + (dx, -0.012 * (j + 1)) for dx in (-0.02, -0.01, 0, 0.01, 0.02) for j in range(4)]
    return np.array([wrist, *fingers], np.float32)


def face(i: int) -> int:
    return 25 + i


INJECT = {}


def inject(name):
    def deco(fn):
        INJECT[name] = fn
        return fn
    return deco


@inject("hand-to-face contact")
def _touch(p):
    cheek = FACE_C + (0.6 * HW, 0.4 * HH)
    p[A:B, 7, :2] = cheek + (0, 0.03)
    p[A:B, 95:116, :2] = hand_at(cheek + (0, 0.03))


@inject("arms crossed / folded")
def _fold(p):
    p[A:B, 4, :2], p[A:B, 7, :2] = (0.62, 0.75), (0.38, 0.75)
    p[A:B, 116:137, :2], p[A:B, 95:116, :2] = hand_at((0.62, 0.75)), hand_at((0.38, 0.75))


def face_depth() -> np.ndarray:
    """Depth of the 70 face points (the synthetic figure's), for turning the head in 3-D."""
    from hiddenemo.synthetic.figure import FACE
    return np.asarray(FACE[:, 2], dtype=np.float32)


def move_head(p, frames, yaw=0.0, pitch=0.0, roll=0.0) -> None:
    """Turn the head of `p` on `frames` by yaw / pitch / roll (radians, arrays over the frames): the
    face points and the BODY_25 nose, eyes and ears move as points of a 3-D head (ears at depth 0)."""
    n = len(range(*frames.indices(len(p))))
    yaw, pitch, roll = (np.broadcast_to(np.asarray(a, np.float32), (n,))[:, None] for a in (yaw, pitch, roll))
    depth = np.concatenate([face_depth(), [0.71, 0.3, 0.3, 0.0, 0.0]])         # face, nose, eyes, ears
    idx = np.concatenate([np.arange(25, 95), [0, 15, 16, 17, 18]])
    x, y = p[frames, idx, 0] - FACE_C[0], p[frames, idx, 1] - FACE_C[1]
    x = x * np.cos(yaw) + depth * HW * np.sin(yaw)
    y = y + depth * HH * 0.5 * np.sin(pitch)
    x, y = x * np.cos(roll) - y * np.sin(roll), x * np.sin(roll) + y * np.cos(roll)
    p[frames, idx, 0], p[frames, idx, 1] = x + FACE_C[0], y + FACE_C[1]


def wave(n: int, hz: float, fps: float = FPS) -> np.ndarray:
    return np.sin(2 * np.pi * hz * np.arange(n) / fps)


@inject("head turn")
def _turn(p):
    move_head(p, slice(A, B), yaw=0.7)


@inject("head nod")
def _nod(p):
    move_head(p, slice(A, B), pitch=0.3 * wave(B - A, 2.0))


@inject("head shake")
def _shake(p):
    move_head(p, slice(A, B), yaw=0.3 * wave(B - A, 2.5))


@inject("head tilt")
def _tilt(p):
    move_head(p, slice(A, B), roll=0.3)


@inject("shoulder rise (shrug)")
def _shrug(p):
    p[A:B, [2, 5], 1] -= 0.07


@inject("blink")
def _blink(p):
    for start in (A, A + 20, A + 40):
        for up, low in ((37, 41), (38, 40), (43, 47), (44, 46)):
            p[start:start + 3, face(up), 1] = p[start:start + 3, face(low), 1]


@inject("mouth opening")
def _mouth(p):
    p[A:B, face(62), 1] -= 0.1 * HH
    p[A:B, face(66), 1] += 0.1 * HH


@inject("smile")
def _smile(p):
    p[A:B, [face(48), face(60)], 0] -= 0.06 * HW
    p[A:B, [face(54), face(64)], 0] += 0.06 * HW


@inject("gaze aversion")
def _gaze(p):
    p[A:B, [93, 94], 0] += 0.3 * (0.34 * HW)


@inject("fidgeting")
def _fidget(p):
    t = np.arange(B - A) / FPS
    shake = 0.02 * np.sin(2 * np.pi * 4.0 * t)
    p[A:B, 95:137, 0] += shake[:, None]
    p[A:B, [4, 7], 0] += shake[:, None]


def test_every_cue_has_a_test():
    assert set(INJECT) == set(C.detect_all(neutral(), FPS))


def test_a_still_neutral_person_shows_no_cue():
    found = C.detect_all(neutral(), FPS)
    assert {name: cue.count() for name, cue in found.items() if cue.count()} == {}


@pytest.mark.parametrize("name", sorted(INJECT))
def test_each_cue_is_found_at_its_time_and_alone(name):
    pose = neutral(seed=1)
    INJECT[name](pose)
    found = C.detect_all(pose, FPS)
    eps = found[name].episodes
    assert eps, f"{name} not found"
    end = (A + 43) / FPS if name == "blink" else B / FPS
    assert eps[0].start_s == pytest.approx(A / FPS, abs=0.5) and eps[-1].end_s == pytest.approx(end, abs=0.5)
    if name == "blink":
        assert len(eps) == 3
    others = {n: c.count() for n, c in found.items() if n != name and c.count()}
    assert others == {}, f"{name} also triggered {others}"


def test_missing_points_are_not_cues():
    pose = neutral()
    pose[100:300, 95:137, :2] = np.nan           # hands lost
    pose[100:300, 93:95, :2] = np.nan            # pupils lost
    found = C.detect_all(pose, FPS)
    assert {n: c.count() for n, c in found.items() if c.count()} == {}
    with pytest.raises(ValueError, match="137, 3"):
        C.detect_all(pose[:, :100], FPS)


def tense(seed: int) -> np.ndarray:
    pose = neutral(seed)
    _fold(pose)
    _gaze(pose)
    return pose


def relaxed(seed: int) -> np.ndarray:
    pose = neutral(seed)
    _smile(pose)
    return pose


def test_rules_rank_tense_below_relaxed_and_face_scratch_alone_is_neutral():
    v_tense, v_relaxed = (judge("v", f(0), FPS, ["lose", "win"], "win") for f in (tense, relaxed))
    v_plain = judge("v", neutral(0), FPS, ["lose", "win"], "win")
    touch = neutral(0)
    _touch(touch)
    v_touch = judge("v", touch, FPS, ["lose", "win"], "win")
    assert v_tense.p_positive < v_plain.p_positive < v_relaxed.p_positive
    assert v_touch.p_positive == pytest.approx(v_plain.p_positive, abs=1e-6)   # the paper's rule
    assert v_tense.label == "lose" and v_relaxed.label == "win"
    # The verdict-free text describes the cues with times but carries no verdict or rule.
    assert "arms crossed / folded (arms crossed): 1 times" in v_tense.text_verdict_free
    assert "0:08.0" in v_tense.text_verdict_free
    assert "Verdict" not in v_tense.text_verdict_free and "Verdict: lose" in v_tense.text
    assert any(o.code == "AU61/AU62" for o in v_tense.observations)
    again = judge("v", tense(0), FPS, ["lose", "win"], "win")                     # deterministic
    assert again.p_positive == v_tense.p_positive and again.text == v_tense.text


def test_teach_behaviour_cli_writes_verdicts_skips_missing_pose_and_reports(work, capsys):
    from hiddenemo.cli import main
    from hiddenemo.teacher.store import read_verdicts

    store = Store(work)
    rows = []
    for i in range(6):
        vid = f"s{i}"
        if i < 5:
            store.save(vid, "pose", (tense if i % 2 else relaxed)(i).astype(np.float16), "test", "1")
        rows.append({"video_id": vid, "label": (0 if i % 2 else 1) if i < 4 else pd.NA,
                     "split": "train" if i < 4 else "test", "fps": FPS, "n_frames": T})
    write_manifest(work, pd.DataFrame(rows))
    DatasetInfo(name="t", classes=["lose", "win"], positive="win").save(work)
    assert main(["teach", "--work", str(work), "--teacher", "behaviour"]) == 0
    out = capsys.readouterr().out
    assert "asked 5 (5 ok, 0 failed)" in out and "1 without input" in out
    assert "s5: no pose.npy" in (work / "status" / "teach.jsonl").read_text()
    assert "accuracy 1.000" in out and "AUROC 1.000" in out and "coverage 100.0%" in out
    assert set(read_verdicts(work, "behaviour")) == {f"s{i}" for i in range(5)}
    assert '"video_id": "s5"' in (work / "status" / "teach.jsonl").read_text().replace('":"', '": "')
    assert main(["teach", "--work", str(work), "--teacher", "behaviour"]) == 0
    assert "asked 0" in capsys.readouterr().out
    # A workspace whose positive class is the unpleasant one: the rules point the other way, and the
    # verdicts are asked again (the valence is part of the cache key).
    before = {v: x.p_positive for v, x in read_verdicts(work, "behaviour").items()}
    DatasetInfo(name="t", classes=["calm", "stressed"], positive="stressed", positive_valence="unpleasant").save(work)
    assert main(["teach", "--work", str(work), "--teacher", "behaviour"]) == 0
    assert "asked 5 (5 ok, 0 failed)" in capsys.readouterr().out
    after = read_verdicts(work, "behaviour")
    for vid, p in before.items():
        assert after[vid].p_positive == pytest.approx(1 - p)
        assert after[vid].label == ("stressed" if after[vid].p_positive >= 0.5 else "calm")
    assert "log-odds towards stressed" in after["s0"].text


def test_nobody_seen_is_no_input_not_a_verdict(work, capsys):
    """A video where extraction found nobody (every confidence 0) gets no verdict and no pseudo-label."""
    from hiddenemo.cli import main

    store = Store(work)
    store.save("seen", "pose", relaxed(0).astype(np.float16), "test", "1")
    store.save("nobody", "pose", np.zeros((T, 137, 3), np.float16), "test", "1")
    write_manifest(work, pd.DataFrame([{"video_id": v, "label": pd.NA, "split": "test", "fps": FPS, "n_frames": T}
                                       for v in ("seen", "nobody")]))
    DatasetInfo(name="t", classes=["lose", "win"], positive="win").save(work)
    assert main(["teach", "--work", str(work), "--teacher", "behaviour"]) == 0
    assert "asked 1 (1 ok, 0 failed)" in capsys.readouterr().out
    assert "nobody: pose.npy holds no keypoint in any frame" in (work / "status" / "teach.jsonl").read_text()


def test_behaviour_on_synthetic_keypoints_finds_the_inserted_episodes():
    """The synthetic dataset's own generator (hiddenemo.synthetic) with its pixel noise: the cues it
    inserts for a keypoint teacher are found where it put them."""
    from hiddenemo.data.keypoints import normalise_to_box
    from hiddenemo.synthetic.figure import skeleton
    from hiddenemo.synthetic.plan import FPS, envelopes, plan_dataset

    plan = plan_dataset(3, 8, 1000)[5]
    rng = np.random.default_rng(0)
    px = skeleton(plan, rng) * 2.5
    px += rng.normal(0, 1.0, px.shape)
    pose, _ = normalise_to_box(px, np.where(np.isfinite(px).all(-1), 0.8, 0.0))
    found = C.detect_all(pose.astype(np.float32), FPS)
    env = envelopes(plan)
    for cue, name in (("face_touch", "hand-to-face contact"), ("arm_fold", "arms crossed / folded"),
                      ("gaze_away", "gaze aversion"), ("smile", "smile"), ("blink", "blink")):
        truth = env[cue] > 0.5
        seen = np.zeros(plan.n_frames, bool)
        for e in found[name].episodes:
            seen[int(e.start_s * FPS):int(e.end_s * FPS)] = True
        if truth.sum() < 10:
            continue
        overlap = (truth & seen).sum() / truth.sum()
        precision = (truth & seen).sum() / max(seen.sum(), 1)
        assert overlap > 0.6 and precision > 0.6, (cue, overlap, precision)


def test_behaviour_on_real_openpose_keypoints(imigue_dir, tmp_path):
    """The first 100 s of iMiGUE video 298 (real OpenPose output), read in place from the shared data."""
    from hiddenemo.data.keypoints import normalise_to_box
    from hiddenemo.data.openpose import read_openpose_dir

    out = tmp_path / "298"
    out.mkdir()
    with tarfile.open(imigue_dir / "openpose_json_video298.tar.xz", "r|xz") as tar:
        n = 0
        for member in tar:
            if member.isfile() and member.name.endswith("_keypoints.json"):
                frame = int(member.name.rsplit("_", 2)[-2])
                if frame < 2500:
                    (out / Path(member.name).name).write_bytes(tar.extractfile(member).read())
                    n += 1
            if n >= 2500:
                break
    video = read_openpose_dir(out, workers=1)
    pose, _ = normalise_to_box(video.xy, video.conf)
    v = judge("298", pose.astype(np.float32), FPS, ["lose", "win"], "win")
    assert v.ok and 0.0 < v.p_positive < 1.0
    blinks = next(line for line in v.text_verdict_free.splitlines() if "blink" in line)
    found = C.detect_all(pose.astype(np.float32), FPS)
    # A real face blinks (typically 10-30 a minute) and a press conference is mostly talk.
    assert 2 <= found["blink"].count() / (len(pose) / FPS / 60) <= 60, blinks
    assert found["mouth opening"].count() > 0


@pytest.mark.parametrize("n_frames", [1, 2, 9, 14])
def test_clips_shorter_than_the_smoothing_windows_get_a_verdict(n_frames):
    """Issue 21: 9- and 14-frame clips at 16 fps crashed the nod detector (`operands could not be
    broadcast together with shapes (9,) (16,)`): a window longer than the clip is cut to the clip."""
    v = judge("short", neutral(seed=2)[:n_frames], 16.0, ["lose", "win"], "win")
    assert v.ok and 0.0 < v.p_positive < 1.0 and "Video of" in v.text_verdict_free


SHORT_FPS, SHORT_T = 16.0, 32                  # 2 s at 16 fps, the motion from 0.4 s to 1.8 s
MOTION = slice(6, 29)


def head_clip(kind: str, body_only: bool) -> np.ndarray:
    """A 2-s clip of a seated person making one head movement; `body_only` drops the face mesh, as
    MediaPipe does on a face turned away (the BODY_25 nose, eyes and ears remain)."""
    p = neutral(seed=3)[:SHORT_T]
    n = MOTION.stop - MOTION.start
    ramp = np.clip(np.arange(n) / 4, 0, 1)           # a turn or tilt takes a quarter of a second, then holds
    motion = {"head nod": {"pitch": 0.3 * wave(n, 2.0, SHORT_FPS)},
              "head shake": {"yaw": 0.3 * wave(n, 2.5, SHORT_FPS)},
              "head turn": {"yaw": 0.8 * ramp},
              "head tilt": {"roll": 0.3 * ramp}}[kind]
    move_head(p, MOTION, **motion)
    if body_only:
        p[:, 25:95] = np.nan
    return p


@pytest.mark.parametrize("body_only", [False, True], ids=["face-mesh", "body-points-only"])
@pytest.mark.parametrize("kind", ["head nod", "head shake", "head turn", "head tilt"])
def test_head_movements_in_2s_clips_are_named_with_their_times(kind, body_only):
    pose = head_clip(kind, body_only)
    found = C.detect_all(pose, SHORT_FPS)
    head = {n: c.count() for n, c in found.items() if n.startswith("head") and c.count()}
    assert head == {kind: 1}, head
    v = judge("clip", pose, SHORT_FPS, ["lose", "win"], "win")
    [obs] = [o for o in v.observations if o.description.startswith(kind)]
    assert obs.start_s == pytest.approx(MOTION.start / SHORT_FPS, abs=0.3)
    assert obs.end_s == pytest.approx(MOTION.stop / SHORT_FPS, abs=0.3)
    assert ("from the body points" in obs.description) == body_only
    assert ("face mesh" in obs.description) != body_only
    line = next(x for x in v.text_verdict_free.splitlines() if x.startswith(f"- {kind}"))
    assert "1 times" in line and "0:00." in line


def render_head_clip(path: Path, kind: str, n: int = 60) -> Path:
    """The synthetic figure (hiddenemo.synthetic) making one head movement in 3-D, drawn to a video:
    a nod (pitch 2 Hz), a shake (yaw 2 Hz) or a turn held to the end, from 0.5 s to 2.0 s."""
    from helpers_video import write_video

    from hiddenemo.synthetic.figure import FACE, skeleton
    from hiddenemo.synthetic.plan import FPS, plan_dataset
    from hiddenemo.synthetic.render import render

    t = np.arange(n) / FPS
    active = ((t > 0.5) & (t < 2.0)).astype(np.float32)
    angle = {"nod": 0.35 * np.sin(2 * np.pi * 2.0 * t) * active, "shake": 0.45 * np.sin(2 * np.pi * 2.0 * t) * active,
             "turn": 0.9 * np.clip((t - 0.5) / 0.3, 0, 1)}[kind]
    yaw, pitch = (angle, np.zeros(n)) if kind != "nod" else (np.zeros(n), angle)
    plan = plan_dataset(0, 4, n)[0]
    plan.n_frames, plan.episodes = n, []
    rng = np.random.default_rng(0)
    kp = skeleton(plan, rng)                                   # a still person, base units
    s = plan.subject.scale
    centre = (kp[:, 25] + kp[:, 41]) / 2 + np.array([0.0, 0.05 * 20 * s])     # the face template's origin
    x = FACE[None, :, 0] * np.cos(yaw)[:, None] + FACE[None, :, 2] * np.sin(yaw)[:, None]
    y = FACE[None, :, 1] * np.cos(pitch)[:, None] + FACE[None, :, 2] * np.sin(pitch)[:, None]
    kp[:, 25:95] = np.stack([centre[:, None, 0] + 16 * s * x, centre[:, None, 1] + 20 * s * y], -1)
    kp[:, 0], kp[:, 15], kp[:, 16] = kp[:, 25 + 30], kp[:, 25 + 68], kp[:, 25 + 69]
    kp[:, 17, 0], kp[:, 18, 0] = centre[:, 0] - 17 * s * np.cos(yaw), centre[:, 0] + 17 * s * np.cos(yaw)
    frames = [f[..., ::-1] for f in render(plan, kp, 384, 288, rng)]     # BGR -> RGB
    return write_video(path, frames, codec="h264")


@pytest.fixture(scope="module")
def rendered_poses(tmp_path_factory) -> dict[str, np.ndarray]:
    """MediaPipe keypoints of a rendered nod, shake and turn (extracted like any video)."""
    from hiddenemo.extract.config import ExtractConfig
    from hiddenemo.extract.runner import extract_all

    folder = tmp_path_factory.mktemp("rendered")
    videos = {k: render_head_clip(folder / f"{k}.mp4", k) for k in ("nod", "shake", "turn")}
    work = folder / "work"
    work.mkdir()
    write_manifest(work, pd.DataFrame([{"video_id": k, "path": str(p), "split": "test"} for k, p in videos.items()]))
    assert extract_all(work, ExtractConfig(frames="none", threads=1))["ok"] == 3
    return {k: np.asarray(Store(work).load(k, "pose"), np.float32) for k in videos}


@pytest.mark.parametrize("kind", ["nod", "shake", "turn"])
def test_rendered_head_movements_through_mediapipe(rendered_poses, kind):
    """Drawn video -> MediaPipe -> the cues: each movement is named, alone, at its time. (From the body
    points alone only the turn is checked here: MediaPipe smooths its pose landmarks over frames and
    places the drawn figure's BODY_25 nose loosely, which damps a 2 Hz nod or shake on this drawing;
    body-only nods and shakes are checked on keypoint sequences above.)"""
    found = C.detect_all(rendered_poses[kind], 25.0)
    head = {n: c.count() for n, c in found.items() if n.startswith("head") and c.count()}
    assert head == {f"head {kind}": 1}, head
    [e] = found[f"head {kind}"].episodes
    assert 0.2 < e.start_s < 1.0 and 1.8 < e.end_s < 2.5, e
    if kind == "turn":
        body_only = rendered_poses[kind].copy()
        body_only[:, 25:95] = np.nan
        [e] = C.detect_all(body_only, 25.0)["head turn"].episodes
        assert "from the body points" in e.detail and 0.2 < e.start_s < 1.0, e


def test_a_shake_in_a_10_minute_video_is_found_alone_at_its_time():
    """The same detectors on a long video: nothing in 10 minutes of a still person but the one shake."""
    pose = neutral(seed=5, n=int(FPS * 600))
    start = int(FPS * 420)
    move_head(pose, slice(start, start + 60), yaw=0.3 * wave(60, 2.5))
    found = {n: c.episodes for n, c in C.detect_all(pose, FPS).items() if c.count()}
    assert list(found) == ["head shake"] and len(found["head shake"]) == 1, found
    assert found["head shake"][0].start_s == pytest.approx(420, abs=0.3)
    assert found["head shake"][0].end_s == pytest.approx(422.4, abs=0.3)
