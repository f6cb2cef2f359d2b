"""`hiddenemo evaluate`: metrics with confidence intervals beside baselines."""
from __future__ import annotations

from pathlib import Path
from typing import Optional


def evaluate(work: Path, run: str = "default", split: str = "test", baselines: Optional[list[str]] = None,
             threshold: Optional[float] = None, n_boot: int = 2000, level: float = 0.95, seed: int = 0,
             text_encoder: Optional[str] = None) -> None:
    """Score a run with confidence intervals, beside the majority and logistic baselines.

    Accuracy, balanced accuracy, macro-F1 and AUROC with bootstrap CIs (by subject when known), the
    confusion matrix and a per-subject breakdown; writes WORK/runs/RUN/evaluation.json and
    evaluation.md and prints the latter.

    When the split's labels are unknown (MiGA test) the labeled figures are cross-validated on the
    training videos, and the target gets label-free figures: the predicted positive fraction and the
    EM estimate of its class prior (transductive: uses the unlabeled target videos).

    Args:
        work: The workspace directory.
        run: Name of the run under WORK/runs (need not exist when --baselines is given).
        split: The target split.
        baselines: Modalities whose baselines to fit (events, pose, frames, text, and tfidf: TF-IDF over
            the teacher texts behind `text`); default: the run's modalities; [] for none.
        threshold: Decision threshold overriding the run's selected one.
        n_boot: Bootstrap replicates.
        level: Confidence level of the intervals (and 1 - level is the significance level).
        seed: Seed of the resampling and of the baselines' folds when there is no run.
        text_encoder: Encoder id of the `text.<id>` array (default: the only one present).
    """
    from hiddenemo.eval.evaluate import evaluate_run, render_markdown, save_evaluation
    from hiddenemo.rundir import Run

    result = evaluate_run(work, run, split, baselines, threshold, n_boot, level, seed, text_encoder)
    json_path, md_path = save_evaluation(result, Run(work, run))
    print(render_markdown(result))
    print(f"written: {json_path}, {md_path}")
