"""A training run as `hiddenemo train` runs it: held against a second `train` of the same run, trained
(hiddenemo.train.run), its figures printed — JSON on stdout for scripts, the table with intervals and the
pseudo-label guidance on stderr for the reader. The command, the demo and the ablations all train
through `train_with`."""
from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path

from hiddenemo.train.config import TrainConfig


def train_with(work: Path, run: str, config: TrainConfig) -> dict:
    """`hiddenemo train` with a config built already (the command, the demo and the ablations): hold the
    run, train it, print its figures; returns the metrics."""
    from hiddenemo.data.claims import hold_run
    from hiddenemo.data.workspace import Workspace

    ws = Workspace(work)                 # dataset.json and the manifest, read once for the whole command
    # A second `train` of this run refuses while this one lives; the later ranks of a DDP launch run
    # this same command and share the first rank's hold.
    with hold_run(work, run) if first_rank() else contextlib.nullcontext():
        from hiddenemo.train.run import train_run

        metrics = train_run(ws, run, config)
    print(json.dumps(summary(metrics), indent=2))              # stdout stays JSON for scripts
    print(with_intervals(metrics), file=sys.stderr)            # the reader's table: figures with intervals
    from hiddenemo.noise_study import print_recommendation
    print_recommendation(ws, run)
    return metrics


def first_rank() -> bool:
    """False in a later rank of a multi-process launch: torchrun, srun, MPI, or the processes
    Lightning starts itself for `--trainer.devices 2` (it sets LOCAL_RANK and NODE_RANK in them)."""
    ranks = ("RANK", "SLURM_PROCID", "OMPI_COMM_WORLD_RANK", "PMI_RANK", "LOCAL_RANK", "NODE_RANK")
    return all(os.environ.get(var, "0") in ("", "0") for var in ranks)


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
