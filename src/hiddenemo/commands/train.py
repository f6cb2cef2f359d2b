"""`hiddenemo train`, `predict` and `ensemble`: two-stage weak-to-strong training, voting inference,
the mean of several runs.

Heavy imports (torch, Lightning) happen inside the functions so `hiddenemo --help` stays fast.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

from hiddenemo.commands.signature import takes
from hiddenemo.train.config import TrainConfig
from hiddenemo.train.session import summary, train_with


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


def predict(work: Path, run: str = "default", split: str = "test", submission: bool = False,
            model: Optional[str] = None) -> None:
    """Predict a split with a trained run, voting over several samplings of each video.

    Writes WORK/runs/RUN/predictions.csv (video_id, p_positive, predicted_class, n_votes, vote_std;
    more than two classes: p_<class> per class, predicted_class the arg-max; predictions_SPLIT.csv for
    a split other than test).

    Args:
        work: The workspace directory.
        run: Name of the trained run.
        split: Which split to predict.
        submission: Also write WORK/runs/RUN/submission.csv in the challenge layout: video_id,prediction
            with 1 = the positive class (iMiGUE: win), 0 = the negative class (lose); more than two
            classes: the predicted class's name.
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
    threshold is chosen again on the averaged out-of-fold predictions, never on test labels (more than
    two classes: the arg-max of the averaged class probabilities). One run's
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
    for share in ("predicted_positive_fraction", "predicted_class_fraction"):      # two classes / more
        if share in metrics:
            out[share] = metrics[share]
    print(json.dumps(out, indent=2))
