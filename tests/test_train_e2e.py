"""Tiny end to end on synthetic features written straight into a workspace: stage 1 -> stage 2 with
pseudo-labels -> voting predict, and the run layout of docs/contracts.md."""
from __future__ import annotations

import json
import logging

import pandas as pd
import pytest
import yaml
from safetensors.torch import load_file
from train_fixtures import add_teacher, hide_test_labels, make_workspace, tiny_config

from hiddenemo.train.config import TrainConfig, from_dict
from hiddenemo.train.run import predict_run, train_run


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    work = tmp_path_factory.mktemp("work")
    manifest = make_workspace(work)
    add_teacher(work, manifest)
    hide_test_labels(work)
    config = tiny_config(pseudo={"teacher": "rules", "policy": {"mode": "soft", "weight": 0.5}})
    metrics = train_run(work, "tiny", config)
    return work, work / "runs" / "tiny", config, metrics


def test_run_layout(trained):
    work, run, config, metrics = trained
    for name in ("config.yaml", "oof.csv", "selection.json", "predictions.csv", "metrics.json",
                 "stage2/metrics.csv", *(f"stage1/{m}/metrics.csv" for m in config.model.modalities)):
        assert (run / name).exists(), name
    # The resolved config re-reads to the same dataclass.
    assert from_dict(TrainConfig, yaml.safe_load((run / "config.yaml").read_text())) == config
    history = pd.read_csv(run / "stage2/metrics.csv")
    assert list(history.columns) == ["epoch", "fold", "train_loss", "val_loss", "val_acc", "val_auroc"]
    assert len(history) == 3 * config.stage2.epochs                       # every epoch of every fold
    oof = pd.read_csv(run / "oof.csv", dtype={"video_id": str})
    assert set(oof["modality"]) == {"pose", "frames", "text", "events", "fusion"}
    assert len(oof) == 24 * 5 and oof["p_positive"].between(0, 1).all()
    assert sorted(oof.loc[oof["modality"] == "fusion", "fold"].unique()) == [0, 1, 2]


def test_selection_and_metrics(trained):
    _, run, config, metrics = trained
    selection = json.loads((run / "selection.json").read_text())
    assert selection["final"]["model"] == "stage2"
    assert selection["stage2"]["n_pseudo"] == 8                           # the 8 unlabeled test videos
    for key in ("stage1/pose", "stage1/text", "stage2"):
        assert 1 <= selection[key]["epochs"] <= (config.stage2 if key == "stage2" else config.stage1).epochs
        assert 0 <= selection[key]["threshold"]["threshold"] <= 1
    cv = metrics["cross_validated"]["stage2"]
    assert set(cv) >= {"accuracy", "balanced_accuracy", "macro_f1", "auroc"}
    assert metrics["test"] is None                                        # test labels are blank here
    assert "gain" in metrics["stage2_gain_accuracy"]


def test_checkpoints_are_safetensors(trained):
    _, run, config, _ = trained
    final = json.loads((run / "selection.json").read_text())["stage2"]["epochs"]
    state = load_file(str(run / "stage2" / "fold0" / f"epoch-{final}.safetensors"))   # fold ensemble
    assert any(k.startswith("encoders.text.") for k in state) and any(k.startswith("head.") for k in state)
    assert not list(run.rglob("*.ckpt"))                                  # no pickled Lightning checkpoints


def test_predict_writes_predictions_and_submission(trained):
    work, run, _, _ = trained
    predict_run(work, "tiny", split="test", submission=True)
    pred = pd.read_csv(run / "predictions.csv", dtype={"video_id": str})
    assert list(pred.columns) == ["video_id", "p_positive", "label", "n_votes", "vote_std"]
    assert len(pred) == 8 and set(pred["label"]) <= {"win", "lose"} and (pred["n_votes"] == 3 * 2).all()   # 3 fold models x 2 draws
    assert (pred["vote_std"] >= 0).all()
    sub = pd.read_csv(run / "submission.csv", dtype={"video_id": str})
    assert list(sub.columns) == ["video_id", "prediction"]
    assert (sub["prediction"] == (pred["label"] == "win").astype(int)).all()
    # Voting is deterministic: predicting again gives the same file.
    before = (run / "predictions.csv").read_text()
    predict_run(work, "tiny", split="test")
    assert (run / "predictions.csv").read_text() == before


def test_rerun_skips_finished_work(trained):
    work, run, config, metrics = trained
    stamp = (run / "stage2" / "fold0" / "done.json").stat().st_mtime_ns
    again = train_run(work, "tiny", config)
    assert (run / "stage2" / "fold0" / "done.json").stat().st_mtime_ns == stamp
    assert again["cross_validated"] == metrics["cross_validated"]


def test_a_different_config_is_refused_for_the_same_run(trained):
    from hiddenemo.errors import UserError
    work, _, config, _ = trained
    with pytest.raises(UserError, match="different config"):
        train_run(work, "tiny", tiny_config(seed=1))


@pytest.mark.parametrize("overrides", [
    {"stage1_enabled": False},                                            # the "no pretraining" rows
    {"stage1": {"epochs": 2, "contrastive_weight": 0.1}, "selection": {"final_model": "retrain"}},
])
def test_strategy_switches(tmp_path, overrides, caplog):
    """The ablation switches train and predict: stage 2 from fresh encoders; a contrastive term in
    stage 1 with one retrained final model instead of the fold ensemble."""
    caplog.set_level(logging.INFO, logger="hiddenemo.train.module")
    manifest = make_workspace(tmp_path, n_train=12, n_test=4)
    add_teacher(tmp_path, manifest)
    hide_test_labels(tmp_path)
    config = tiny_config(model={"modalities": ["text", "events"]}, pseudo={"teacher": "rules"}, **overrides)
    metrics = train_run(tmp_path, "s", config)
    run = tmp_path / "runs" / "s"
    assert (run / "stage1").exists() == config.stage1_enabled
    assert (run / "stage2" / "final").exists() == (config.selection.final_model == "retrain")
    # stderr is not a terminal under pytest: no progress bar, a log line for the last epoch of each fit
    epoch_lines = [r.getMessage() for r in caplog.records if " train loss " in r.getMessage()]
    assert any(line.startswith(f"stage2/fold0 epoch {config.stage2.epochs}: train loss ") and "val AUROC" in line for line in epoch_lines)
    assert len({line.split(" epoch ")[0] for line in epoch_lines}) == len(epoch_lines)   # one per fit
    assert 0 <= metrics["cross_validated"]["stage2"]["auroc"] <= 1
    pred = pd.read_csv(run / "predictions.csv")
    k = 1 if config.selection.final_model == "retrain" else int(json.loads((run / "selection.json").read_text())["folds"]["k"])
    assert len(pred) == 4 and (pred["n_votes"] == k * config.sampling.votes).all()
