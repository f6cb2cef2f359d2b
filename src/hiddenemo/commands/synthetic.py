"""`hiddenemo dataset synthetic`: a seeded synthetic interview dataset in the real formats."""
from __future__ import annotations

from pathlib import Path

from hiddenemo.errors import UserError


def synthetic(out: Path, seed: int = 0, n_videos: int = 64, n_frames: int = 150, width: int = 192,
              height: int = 144, n_subjects: int | None = None, lose_share: float = 0.25,
              target_share: float = 0.3, levels: int = 2, workers: int = 0) -> None:
    """Write drawn interview videos, their OpenPose JSON and iMiGUE-format labels (docs/synthetic.md).

    The folder is then a dataset for `hiddenemo dataset imigue --labels OUT/labels_20200831.csv
    --splits OUT/splits.csv --videos OUT/videos --openpose OUT/openpose --out WORK`. The target
    split's labels are blank there and kept in OUT/target_labels.csv for scoring only.
    Re-running with the same arguments resumes and keeps finished videos.

    Args:
        out: Where the dataset goes.
        seed: Random seed; the same seed and sizes give the same files.
        n_videos: Number of videos.
        n_frames: Median video length in frames at 25 fps (lengths vary about 0.5x to 2.2x).
        width: Video width in pixels (even).
        height: Video height in pixels (even).
        n_subjects: Number of people (default: a third of the videos, so several videos each).
        lose_share: Share of Lose videos (iMiGUE has about a quarter).
        target_share: Share of videos, by whole subjects, in the unlabeled target (test) split.
        levels: 2 = Win/Lose; 3-5 = a task of that many classes: graded hidden levels (calm, tense,
            stressed, ...) whose cue rates lie between Win's and Lose's, written as OUT/levels.csv for
            `hiddenemo dataset folder --videos OUT/videos --labels OUT/levels.csv --openpose OUT/openpose
            --out WORK` (withheld target levels in OUT/target_levels.csv); the iMiGUE-format files
            then carry the two-class projection (the upper half of the levels = Lose).
        workers: Videos drawn at once, each in its own process (0: one per core, 1: one after the other);
            the files are the same for any number.
    """
    import pandas as pd

    from hiddenemo.synthetic import generate
    from hiddenemo.synthetic.separability import separability

    try:
        summary = generate(out, seed=seed, n_videos=n_videos, n_frames=n_frames, width=width,
                           height=height, n_subjects=n_subjects, lose_share=lose_share,
                           target_share=target_share, levels=levels, workers=workers)
    except ValueError as e:
        raise UserError(f"dataset synthetic: {e}") from e
    print(f"synthetic dataset in {out}: {summary['videos']} videos of {summary['subjects']} people, "
          f"{summary['win']} Win / {summary['lose']} Lose; {summary['labelled']} labelled "
          f"({summary['labelled_lose']} Lose), {summary['target']} target with withheld labels; "
          f"frames {summary['frames_min']}-{summary['frames_max']} (median {summary['frames_median']}, "
          f"total {summary['frames_total']}); {summary['annotations']} annotated micro-gestures.")
    if "levels" in summary:
        print(f"levels: {summary['levels']} (labels for `dataset folder` in {Path(out) / 'levels.csv'})")
    truth = pd.read_csv(Path(out) / "truth" / "cues.csv", dtype={"video_id": str})
    # Cross-validated AUCs on a handful of videos are noise; show them only for a real-sized set.
    if min((truth["win_or_lose"] == "Lose").sum(), (truth["win_or_lose"] == "Win").sum()) >= 8:
        table = separability(truth)
        print("Lose-vs-Win AUC of the inserted cues (ground truth, all videos):")
        print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
