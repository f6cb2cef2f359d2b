"""Confidence-filtered self-training (train/selftrain.py): which target videos a round keeps, and a
round killed in the middle resumes to exactly the uninterrupted result."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from train_fixtures import Killed, die_after_epoch, hide_test_labels, make_workspace, tiny_config

from hiddenemo.train.run import train_run
from hiddenemo.train.selftrain import confident_labels

SELF = {"model": {"modalities": ["text", "pose"], "dim": 16, "encoders": {"pose": "pose-stats"}, "fusion": "late",
                  "late_mix": "stacked"},
        "stage1": {"epochs": 2, "lr": 3e-3, "batch_size": 8}, "stage2": {"epochs": 2, "lr": 1e-3, "batch_size": 8},
        "selection": {"folds": 2}, "self_training": {"rounds": 2, "keep": 0.5, "weight": 0.5}}


def test_confident_labels_keep_the_share_farthest_from_the_threshold():
    p = pd.DataFrame({"video_id": list("abcdef"), "p_positive": [0.95, 0.62, 0.58, 0.1, 0.55, 0.3]})
    kept = confident_labels(p, threshold=0.6, keep=0.5, weight=0.5)
    assert list(kept["video_id"]) == ["d", "a", "f"]          # logit distance from 0.6, largest first
    assert list(kept["target"]) == [0.0, 1.0, 0.0] and set(kept["weight"]) == {0.5}



def test_self_training_round_resumes_after_a_kill(tmp_path, monkeypatch):
    config = tiny_config(**SELF)
    for name in ("a", "b"):
        make_workspace(tmp_path / name)
        hide_test_labels(tmp_path / name)
    reference = train_run(tmp_path / "a", "r", config)
    selection = json.loads((tmp_path / "a" / "runs" / "r" / "selection.json").read_text())
    assert selection["stage2"]["dir"] == "stage2/round2" and sorted(selection["stage2"]["rounds"]) == ["0", "1", "2"]
    assert sorted(selection["stage2"]["late_mix"]) == ["final", "fold0", "fold1"]     # the rounds' start, on record
    kept = pd.read_csv(tmp_path / "a" / "runs" / "r" / "stage2" / "round1" / "pseudo_fold0.csv")
    assert len(kept) == 4 and set(kept["target"]) <= {0.0, 1.0}          # half of the 8 test videos

    die_after_epoch(monkeypatch, ("round2", "fold1"), 1)
    with pytest.raises(Killed):
        train_run(tmp_path / "b", "r", config)
    assert (tmp_path / "b" / "runs" / "r" / "stage2" / "round2" / "fold0" / "done.json").exists()
    monkeypatch.undo()

    resumed = train_run(tmp_path / "b", "r", config)
    assert resumed["cross_validated"] == reference["cross_validated"]
    for name in ("oof.csv", "selection.json", "predictions.csv"):
        assert (tmp_path / "a" / "runs" / "r" / name).read_text() == (tmp_path / "b" / "runs" / "r" / name).read_text()
    assert np.isfinite(pd.read_csv(tmp_path / "b" / "runs" / "r" / "predictions.csv")["p_positive"]).all()
