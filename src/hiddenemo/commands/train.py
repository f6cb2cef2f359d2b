"""`hiddenemo train`, `predict` and `ensemble`: two-stage weak-to-strong training, voting inference,
the mean of several runs.

Heavy imports (torch, Lightning) happen inside the functions so `hiddenemo --help` stays fast.
"""
from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Optional

from hiddenemo.commands.signature import takes
from hiddenemo.train.config import TrainConfig


@takes(TrainConfig)
def train(work: Path, run: str = "default", config: TrainConfig = TrainConfig()) -> None:
    """Train stage 1 (each modality alone), then stage 2 (fused, with the teacher's pseudo-labels).

    k-fold cross-validation on the labeled training videos picks the epochs and the threshold. Writes
    WORK/runs/RUN/ and predictions for the test split. Re-running the same command resumes an
    interrupted run. Then prints guidance to stderr (never applied): the teacher's out-of-fold
    accuracy and, after `ablate --study teacher-noise`, whether stage 2 is expected to help at that noise.

    Args:
        work: The workspace directory.
        run: Name of the run directory under WORK/runs.
    """
    train_with(work, run, config)


def train_with(work: Path, run: str, config: TrainConfig) -> dict:
    """`hiddenemo train` with a config built already (the demo and ablations build theirs with
    `load_train_config`): hold the run, train it, print its figures; returns the metrics."""
    from hiddenemo.data.claims import hold_run
    from hiddenemo.data.workspace import Workspace

    ws = Workspace(work)                 # dataset.json and the manifest, read once for the whole command
    # A second `train` of this run refuses while this one lives; the later ranks of a DDP launch run
    # this same command and share the first rank's hold.
    with hold_run(work, run) if _first_rank() else contextlib.nullcontext():
        from hiddenemo.train.run import train_run

        metrics = train_run(ws, run, config)
    print(json.dumps(summary(metrics), indent=2))              # stdout stays JSON for scripts
    print(with_intervals(metrics), file=sys.stderr)            # the reader's table: figures with intervals
    from hiddenemo.noise_study import print_recommendation
    print_recommendation(ws, run)
    return metrics


def _first_rank() -> bool:
    """False in a later rank of a multi-process launch: torchrun, srun, MPI, or the processes
    Lightning starts itself for `--trainer.devices 2` (it sets LOCAL_RANK and NODE_RANK in them)."""
    ranks = ("RANK", "SLURM_PROCID", "OMPI_COMM_WORLD_RANK", "PMI_RANK", "LOCAL_RANK", "NODE_RANK")
    return all(os.environ.get(var, "0") in ("", "0") for var in ranks)


def predict(work: Path, run: str = "default", split: str = "test", submission: bool = False,
            model: Optional[str] = None) -> None:
    """Predict a split with a trained run, voting over several samplings of each video.

    Writes WORK/runs/RUN/predictions.csv (video_id, p_positive, predicted_class, n_votes, vote_std;
    predictions_SPLIT.csv for a split other than test).

    Args:
        work: The workspace directory.
        run: Name of the trained run.
        split: Which split to predict.
        submission: Also write WORK/runs/RUN/submission.csv in the challenge layout: video_id,prediction
            with 1 = the positive class (iMiGUE: win), 0 = the negative class (lose).
        model: Predict with another of the run's models instead of its final one, e.g. stage1/pose
            (written as predictions_stage1-pose.csv).
    """
    from hiddenemo.train.run import predict_run

    out = predict_run(work, run, split=split, submission=submission, model=model)
    if out is not None:
        print(out)
        if submission:
            print(out.parent / "submission.csv")


def ensemble(work: Path, runs: list[str], run: str = "ensemble", submission: bool = False) -> None:
    """Average finished runs (one config, several seeds) into one steadier prediction.

    Into WORK/runs/RUN/: the members' out-of-fold and test probabilities are averaged and the
    threshold is chosen again on the averaged out-of-fold predictions, never on test labels. One run's
    threshold and predicted class balance move with its seed; their mean moves less. `evaluate` and
    `report` read the result like any run.

    Args:
        work: The workspace directory.
        runs: The member runs, e.g. [s0,s1,s2]; each trained and predicted on the test split.
        run: Name of the ensemble's run directory under WORK/runs.
        submission: Also write WORK/runs/RUN/submission.csv in the challenge layout.
    """
    from hiddenemo.train.ensemble import ensemble_runs

    metrics = ensemble_runs(work, run, runs, submission=submission)
    out = summary(metrics)
    out["members"] = metrics["members"]
    out["predicted_positive_fraction"] = metrics["predicted_positive_fraction"]
    print(json.dumps(out, indent=2))


def with_intervals(metrics: dict) -> str:
    """The figures as `estimate [low, high]`: with a dozen videos the interval is the news."""
    models = {name: m for name, m in metrics["cross_validated"].items() if "ci" in m}
    if metrics.get("test") and "ci" in metrics["test"]:
        models["test split (labels in the manifest)"] = metrics["test"]
    if not models:
        return json.dumps(summary(metrics), indent=2)
    first = next(iter(models.values()))
    lines = [f"{first['level']:.0%} bootstrap intervals over {first['resampled']}; the stage rows are out-of-fold on "
             f"the {first['n']} labeled training videos (metrics.json has every figure):"]
    width = max(map(len, models))
    for name, m in models.items():
        cells = [f"{label} {m['ci'][k]['estimate']:.3f} [{m['ci'][k]['low']:.3f}, {m['ci'][k]['high']:.3f}]"
                 for k, label in FIGURES.items()]
        lines.append(f"  {name:<{width}}  " + "   ".join(cells) + f"   (n={m['n']})")
    return "\n".join(lines)


FIGURES = {"auroc": "AUROC", "balanced_accuracy": "balanced accuracy", "accuracy": "accuracy", "macro_f1": "macro-F1"}


def summary(metrics: dict) -> dict:
    """The headline figures of metrics.json."""
    keys = ("accuracy", "balanced_accuracy", "macro_f1", "auroc")
    out = {name: {k: round(m[k], 4) for k in keys} for name, m in metrics["cross_validated"].items()}
    if metrics.get("test"):
        out["test"] = {k: round(metrics["test"][k], 4) for k in keys}
    return out
