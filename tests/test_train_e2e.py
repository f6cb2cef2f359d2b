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
    assert list(pred.columns) == ["video_id", "p_positive", "predicted_class", "n_votes", "vote_std"]
    assert len(pred) == 8 and set(pred["predicted_class"]) <= {"win", "lose"} and (pred["n_votes"] == 3 * 2).all()   # 3 fold models x 2 draws
    assert (pred["vote_std"] >= 0).all()
    sub = pd.read_csv(run / "submission.csv", dtype={"video_id": str})
    assert list(sub.columns) == ["video_id", "prediction"]
    assert (sub["prediction"] == (pred["predicted_class"] == "win").astype(int)).all()
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


def test_changed_labels_are_refused_for_the_same_run(trained, tmp_path):
    """A relabeled video would mix two training sets in one run's folds: a clear error, no traceback."""
    from hiddenemo.data.manifest import read_manifest, write_manifest
    from hiddenemo.errors import UserError
    work, _, config, _ = trained
    manifest = read_manifest(work)
    original = manifest.copy()
    first_train = manifest.index[manifest["split"] == "train"][0]
    manifest.loc[first_train, "label"] = 1 - manifest.loc[first_train, "label"]
    write_manifest(work, manifest)
    try:
        with pytest.raises(UserError, match="trained on other labeled videos"):
            train_run(work, "tiny", config)
    finally:
        write_manifest(work, original)
    assert train_run(work, "tiny", config)["cross_validated"]          # as it was: resumes (all done)


def test_videos_without_input_are_named_in_training_and_prediction(tmp_path, caplog):
    """Videos whose arrays are missing (failed extraction) still get a row, but it is flagged."""
    make_workspace(tmp_path, n_train=12, n_test=4)                  # every 5th video from 3 has no frames
    hide_test_labels(tmp_path)
    with caplog.at_level(logging.WARNING, logger="hiddenemo.train.run"):
        train_run(tmp_path, "f", tiny_config(model={"modalities": ["frames"]}, stage2_enabled=False))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(m.startswith("2 of 12 labeled training videos have none of the modalities ['frames']") for m in warnings)
    assert any(m.startswith("1 of 4 videos have none of the modalities ['frames']") for m in warnings)
    meta = json.loads((tmp_path / "runs" / "f" / "predictions.json").read_text())
    assert meta["without_input"] == ["v013"]


def test_ctrl_c_in_training_is_a_keyboard_interrupt(tmp_path, monkeypatch):
    """Lightning turns Ctrl-C into sys.exit(1); the CLI must see the interrupt (its message, exit 130)."""
    import signal

    from hiddenemo.train.module import EpochCheckpoint

    def interrupted(*_):
        raise KeyboardInterrupt
    make_workspace(tmp_path, n_train=12, n_test=4)
    monkeypatch.setattr(EpochCheckpoint, "on_train_epoch_end", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train_run(tmp_path, "c", tiny_config(model={"modalities": ["events"]}))
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_run_that_cannot_start_claims_nothing(tmp_path):
    """Inputs that cannot be trained on (a missing modality, a missing workspace, a class without labeled
    videos) leave no config.yaml behind, so the same --run name stays free for the corrected command."""
    from hiddenemo.data.manifest import DatasetInfo
    from hiddenemo.errors import UserError
    make_workspace(tmp_path, n_train=12, n_test=4)
    with pytest.raises(UserError, match="nothere"):
        train_run(tmp_path, "r", tiny_config(model={"modalities": ["text"], "text_encoder": "nothere"}))
    assert not (tmp_path / "runs" / "r" / "config.yaml").exists()
    with pytest.raises(UserError, match="dataset.json"):
        train_run(tmp_path / "nope", "r", tiny_config())
    assert not (tmp_path / "nope" / "runs").exists()
    DatasetInfo(name="tiny", classes=["calm", "neutral", "stressed"], positive=None).save(tmp_path)
    with pytest.raises(UserError, match="'stressed' has 0"):                 # three classes, two labeled
        train_run(tmp_path, "r", tiny_config())
    assert not (tmp_path / "runs" / "r").exists()


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
