"""`hiddenemo demo`: the whole pipeline on a built-in synthetic dataset."""
from __future__ import annotations

from pathlib import Path

from hiddenemo.commands.signature import takes
from hiddenemo.demo import DemoConfig


@takes(DemoConfig)
def demo(out: Path = Path("demo-work"), config: DemoConfig = DemoConfig()) -> None:
    """Run the whole pipeline on a built-in synthetic dataset, from nothing to an HTML report.

    Generates a synthetic interview dataset (videos, OpenPose JSON, iMiGUE-format labels), ingests
    keypoints, embeds frames with DINOv2-S, asks the offline `behaviour` teacher, embeds its texts,
    trains stage 1 and stage 2 with pseudo-labels, predicts the held-out target videos by voting, and
    writes the HTML report. Ends with a table: teacher vs each stage-1 modality vs the fused student on
    the held-out videos. Re-running resumes.

    Args:
        out: Directory for everything the demo makes (data/ and work/).
    """
    from hiddenemo.demo import run_demo

    run_demo(out, config)
