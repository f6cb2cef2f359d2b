"""`hiddenemo ablate`: the paper's ablation tables as seeded studies, and the teacher-noise study."""
from __future__ import annotations

from pathlib import Path
from typing import Literal, Optional

from hiddenemo.commands.signature import takes
from hiddenemo.train.config import NoiseStudy


@takes(NoiseStudy)
def ablate(work: Path, study: Literal["pose-encoders", "frame-encoders", "modalities", "strategy", "stages",
                                      "teacher-noise"] = "pose-encoders",
           seeds: int = 3, base: Optional[Path] = None, config: NoiseStudy = NoiseStudy()) -> None:
    """Run one of the paper's ablation studies on a workspace and print mean ± std over seeds.

    The table is markdown, also written to WORK/ablations/<study>.md, .csv, .json. Each variant x seed
    is an ordinary training run (runs/ablate-<study>-<variant>-s<seed>), so an interrupted study resumes.

    Studies: pose-encoders (Table 1: gcn / gin / gat / mlp, each with and without the t-8/16/24
    offsets; pose alone), frame-encoders (Table 2: per-frame embeddings + Transformer over many
    frames vs a 16-frame clip with no long Transformer, the same encoder on 16 frames, and X-CLIP's own
    clip features pooled when the workspace has them — `extract --extract.frames xclip`; without them
    the study says it keeps the stand-in only), modalities (each alone: keypoints with pose-mlp, keypoints
    bound to their DINOv2 patches with pose-patch — needs `extract --extract.patches_dim 16` — and
    frames), strategy (Table 3: fused without
    pretraining, + weak supervision, + offsets, + per-modality pretraining, + contrastive), stages (the
    base config as it is, one run per seed: each modality's stage-1 model against the stage-2 model,
    with a paired bootstrap and a paired t-test over seeds — does stage 2 earn its place?),
    teacher-noise (labeled training videos only: whole subjects held out as a simulated target, given
    pseudo-labels from a teacher of controlled noise, from the real teacher and from self-training;
    stage 1 shared per seed x split, stage 2 per arm; the student's gain over stage 1 on the held-out
    subjects per noise rate, the rate where it crosses zero, a plot WORK/ablations/teacher-noise.png;
    `train` then prints guidance from it; see docs/training.md).

    Args:
        work: The workspace directory (features and teacher verdicts already there).
        study: Which study to run.
        seeds: Seeds per variant (0 .. seeds-1).
        base: Base training config every variant overlays (e.g. configs/demo.yaml, configs/imigue_events.yaml).
    """
    if study == "teacher-noise":
        from hiddenemo.noise_study import run_noise_study

        run_noise_study(work, seeds, base, config)
        return
    from hiddenemo.ablate import run_study

    run_study(work, study, seeds, base)
