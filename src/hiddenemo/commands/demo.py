"""`hiddenemo demo`: the whole pipeline on a built-in synthetic dataset."""
from __future__ import annotations

from pathlib import Path
from typing import Optional


def demo(out: Path = Path("demo-work"), seed: int = 0, n_videos: int = 96, n_frames: int = 200,
         frames_every: int = 10, workers: int = 0, train_config: Optional[Path] = None) -> None:
    """Run the whole pipeline on a built-in synthetic dataset, from nothing to an HTML report.

    Generates a synthetic interview dataset (videos, OpenPose JSON, iMiGUE-format labels), ingests
    keypoints, embeds frames with DINOv2-S, asks the offline `behaviour` teacher, embeds its texts,
    trains stage 1 and stage 2 with pseudo-labels, predicts the held-out target videos by voting, and
    writes the HTML report. Ends with a table: teacher vs each stage-1 modality vs the fused student on
    the held-out videos. Re-running resumes.

    Args:
        out: Directory for everything the demo makes (data/ and work/).
        seed: Seed of the dataset, the training and every sampling draw.
        n_videos: Synthetic videos (about a third become the unlabeled target set).
        n_frames: Median frames per video (25 fps).
        frames_every: Embed every n-th frame with DINOv2-S (the costliest step).
        workers: Videos extracted at once, each in its own process (0: one per core).
        train_config: Training overlay YAML (default: the packaged configs/demo.yaml).
    """
    from hiddenemo.demo import DEMO_CONFIG, DemoConfig, run_demo

    run_demo(out, DemoConfig(seed=seed, n_videos=n_videos, n_frames=n_frames, frames_every=frames_every,
                             workers=workers, train_config=train_config or DEMO_CONFIG))
