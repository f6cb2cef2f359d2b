"""`hiddenemo ensemble`: finished runs averaged, the threshold chosen again on the averaged
out-of-fold predictions, and the result read by evaluate and report like any run."""
from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pandas as pd
import pytest
from train_fixtures import add_teacher, hide_test_labels, make_workspace, tiny_config

from hiddenemo.cli import main
from hiddenemo.errors import UserError
from hiddenemo.train.config import SelectionConfig
from hiddenemo.train.ensemble import ensemble_runs
from hiddenemo.train.run import predict_run, train_run
from hiddenemo.train.selection import choose_threshold

MODALITIES = {"model": {"modalities": ["text", "events"]}}


@pytest.fixture(scope="module")
def members(tmp_path_factory):
    """Three runs of one config with seeds 0-2, and one stage-1-only run."""
    work = tmp_path_factory.mktemp("work")
    add_teacher(work, make_workspace(work, n_train=16, n_test=6))
    hide_test_labels(work)
    for seed in range(3):
        train_run(work, f"s{seed}", tiny_config(seed=seed, pseudo={"teacher": "rules"}, **MODALITIES))
    train_run(work, "stage1-only", tiny_config(stage2_enabled=False, **MODALITIES))
    return work


def read(work, run, name):
    return pd.read_csv(work / "runs" / run / name, dtype={"video_id": str})


def test_probabilities_are_the_pooled_votes_and_the_threshold_is_chosen_again(members):
    work = members
    metrics = ensemble_runs(work, "ens", ["s0", "s1", "s2"], submission=True)
    preds = read(work, "ens", "predictions.csv").set_index("video_id")
    parts = [read(work, f"s{i}", "predictions.csv").set_index("video_id").loc[preds.index] for i in range(3)]
    n = sum(p["n_votes"] for p in parts)
    np.testing.assert_allclose(preds["p_positive"], sum(p["n_votes"] * p["p_positive"] for p in parts) / n)
    assert (preds["n_votes"] == n).all()
    # the spread of all votes: never below the mean within-member spread
    assert (preds["vote_std"] + 1e-9 >= np.mean([p["vote_std"] for p in parts], axis=0)).all()

    oof = read(work, "ens", "oof.csv")
    fused = oof[oof["stage"] == "stage2"].set_index("video_id")
    member_oof = [read(work, f"s{i}", "oof.csv").query("stage == 'stage2'").set_index("video_id").loc[fused.index]
                  for i in range(3)]
    np.testing.assert_allclose(fused["p_positive"], np.mean([m["p_positive"] for m in member_oof], axis=0))
    expected = choose_threshold(fused["p_positive"].to_numpy(), fused["y_true"].to_numpy(), SelectionConfig(), seed=0)
    selection = json.loads((work / "runs" / "ens" / "selection.json").read_text())
    chosen = selection["stage2"]["threshold"]                  # (oof.csv holds the probabilities as text)
    assert chosen["method"] == "balanced" and chosen["threshold"] == pytest.approx(expected["threshold"])
    assert selection["final"]["model"] == "stage2"
    assert json.loads((work / "runs" / "ens" / "predictions.json").read_text())["threshold"] == chosen["threshold"]
    assert ((preds["p_positive"] >= expected["threshold"]) == (preds["predicted_class"] == "win")).all()
    submission = read(work, "ens", "submission.csv").set_index("video_id").loc[preds.index]
    assert (submission["prediction"] == (preds["predicted_class"] == "win").astype(int)).all()

    assert set(metrics["members"]) == {"s0", "s1", "s2"} and metrics["test"] is None   # test labels are hidden
    assert set(metrics["cross_validated"]) == {"stage1/text", "stage1/events", "stage2"}
    assert json.loads((work / "runs" / "ens" / "ensemble.json").read_text())["members"] == ["s0", "s1", "s2"]


def test_evaluate_and_report_read_the_ensemble(members):
    work = members
    ensemble_runs(work, "ens-read", ["s0", "s1"])
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["evaluate", "--work", str(work), "--run", "ens-read", "--n_boot", "50",
                     "--baselines", "[text]"]) == 0
        assert main(["report", "--work", str(work), "--run", "ens-read"]) == 0
    page = (work / "runs" / "ens-read" / "report.html").read_text()
    assert "stage2" in page and "An ensemble of the runs s0, s1: each member" in page
    assert (work / "runs" / "ens-read" / "evaluation.md").exists()


def test_what_cannot_be_ensembled_is_refused(members, tmp_path, capsys):
    work = members
    with pytest.raises(UserError, match="two or more different runs"):
        ensemble_runs(work, "e", ["s0", "s0"])
    with pytest.raises(UserError, match="is one of its members"):
        ensemble_runs(work, "s0", ["s0", "s1"])
    with pytest.raises(UserError, match="final models differ"):
        ensemble_runs(work, "e", ["s0", "stage1-only"])
    with pytest.raises(UserError, match="not a finished run"):
        ensemble_runs(work, "e", ["s0", "never-trained"])
    with pytest.raises(UserError, match="is a trained run"):
        ensemble_runs(work, "s2", ["s0", "s1"])
    ensemble_runs(work, "e2", ["s0", "s1"])
    with pytest.raises(UserError, match="an ensemble of other runs"):
        ensemble_runs(work, "e2", ["s0", "s2"])
    with pytest.raises(UserError, match="it has no models of its own"):
        predict_run(work, "e2")
    assert main(["ensemble", "--work", str(work), "--runs", "[s0,e2]", "--run", "e3"]) == 2
    assert "is an ensemble of the runs ['s0', 's1']" in capsys.readouterr().err


def test_the_command_prints_members_and_the_predicted_share(members, capsys):
    assert main(["ensemble", "--work", str(members), "--runs", "[s1,s2]", "--run", "cli"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert set(printed["members"]) == {"s1", "s2"} and 0 <= printed["predicted_positive_fraction"] <= 1
    assert "stage2" in printed
