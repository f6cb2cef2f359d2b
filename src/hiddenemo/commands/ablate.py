"""`hiddenemo ablate`: the paper's ablation tables as seeded studies."""
from __future__ import annotations

from pathlib import Path
from typing import Literal, Optional


def ablate(work: Path, study: Literal["pose-encoders", "frame-encoders", "strategy", "stages"] = "pose-encoders",
           seeds: int = 3, base: Optional[Path] = None) -> None:
    """Run one of the paper's ablation studies on a workspace and print mean ± std over seeds.

    The table is markdown, also written to WORK/ablations/<study>.md, .csv, .json. Each variant x seed
    is an ordinary training run (runs/ablate-<study>-<variant>-s<seed>), so an interrupted study resumes.

    Studies: pose-encoders (Table 1: gcn / gin / gat / mlp, each with and without the t-8/16/24
    offsets; pose alone), frame-encoders (Table 2: per-frame embeddings + Transformer over many
    frames vs a 16-frame clip with no long Transformer — X-CLIP's weights cannot be loaded offline,
    so the clip row is the same encoder on 16 frames, named so), strategy (Table 3: fused without
    pretraining, + weak supervision, + offsets, + per-modality pretraining, + contrastive), stages (the
    base config as it is, one run per seed: each modality's stage-1 model against the stage-2 model,
    with a paired bootstrap and a paired t-test over seeds — does stage 2 earn its place?).

    Args:
        work: The workspace directory (features and teacher verdicts already there).
        study: Which study to run.
        seeds: Seeds per variant (0 .. seeds-1).
        base: Base training config every variant overlays (e.g. configs/demo.yaml, configs/imigue_events.yaml).
    """
    from hiddenemo.ablate import run_study

    run_study(work, study, seeds, base)
