"""A fit killed in the middle resumes from its last finished epoch and ends exactly where an
uninterrupted run ends."""
from __future__ import annotations

import pytest
from train_fixtures import Killed, die_after_epoch, make_workspace, tiny_config

from hiddenemo.train import module
from hiddenemo.train.run import train_run

SMALL = {"model": {"modalities": ["text", "events"], "dim": 16,
                   "encoder_args": {"events": {"model_dim": 16, "depth": 1, "heads": 2}}},
         "stage1": {"epochs": 3, "lr": 3e-3, "batch_size": 8}, "stage2": {"epochs": 2, "lr": 1e-3, "batch_size": 8},
         "selection": {"folds": 2}}



def test_interrupted_fit_resumes_exactly(tmp_path, monkeypatch):
    config = tiny_config(**SMALL)
    for name in ("a", "b"):
        make_workspace(tmp_path / name)
    reference = train_run(tmp_path / "a", "r", config)

    # Kill the run at the end of epoch 2 of the events fold-1 fit (after its checkpoint is written).
    die_after_epoch(monkeypatch, ("events", "fold1"), 2)
    with pytest.raises(Killed):
        train_run(tmp_path / "b", "r", config)
    fold = tmp_path / "b" / "runs" / "r" / "stage1" / "events" / "fold1"
    assert module.read_state(fold)["epochs_done"] == 2 and not (fold / "done.json").exists()
    assert (tmp_path / "b" / "runs" / "r" / "stage1" / "text" / "fold1" / "done.json").exists()   # text finished first
    monkeypatch.undo()

    resumed = train_run(tmp_path / "b", "r", config)
    assert resumed["cross_validated"] == reference["cross_validated"]
    for name in ("oof.csv", "selection.json", "predictions.csv"):
        assert (tmp_path / "a" / "runs" / "r" / name).read_text() == (tmp_path / "b" / "runs" / "r" / name).read_text()
