"""`hiddenemo evaluate` end to end on a small workspace with a run written in the contract's format."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from hiddenemo.cli import main
from hiddenemo.data.manifest import read_manifest, write_manifest
from hiddenemo.rundir import Run
from hiddenemo.eval.evaluate import evaluate_predictions, evaluate_run, render_markdown, save_evaluation
from test_eval_baselines import make_workspace


def write_run(work, name="r1", seed=0, signal=0.0):
    """oof.csv, selection.json, predictions.csv as `train` writes them; `signal` sets how much the
    probabilities know about the truth (0 = nothing)."""
    rng = np.random.default_rng(seed)
    manifest = read_manifest(work)
    y = manifest["label"].fillna(0).astype(int).to_numpy()  # unknown labels get a random-looking p anyway
    train = manifest["split"] == "train"
    run = work / "runs" / name
    run.mkdir(parents=True)
    parts = []
    for stage, modality in (("stage1", "events"), ("stage2", "fusion")):
        p = 1 / (1 + np.exp(-(signal * (y[train] - 0.5) + rng.normal(0.8, 1, train.sum()))))
        parts.append(pd.DataFrame({"video_id": manifest["video_id"][train], "stage": stage, "modality": modality,
                                   "fold": np.arange(train.sum()) // 2 % 4, "p_positive": p, "y_true": y[train]}))
    pd.concat(parts).to_csv(run / "oof.csv", index=False)
    selection = {"stage1/events": {"threshold": {"method": "balanced", "threshold": 0.7}},
                 "stage2": {"threshold": {"method": "balanced", "threshold": 0.65}}, "final": {"model": "stage2"}}
    (run / "selection.json").write_text(json.dumps(selection))
    test = manifest[~train]
    p_test = rng.random(len(test))
    pd.DataFrame({"video_id": test["video_id"], "p_positive": p_test,
                  "predicted_class": np.where(p_test >= 0.65, "win", "lose"), "n_votes": 5, "vote_std": 0.1}).to_csv(
        run / "predictions.csv", index=False)
    return run


def test_unknown_labels_give_label_free_figures_only():
    df = pd.DataFrame({"video_id": ["a", "b", "c"], "p_positive": [0.2, 0.7, 0.9], "label": pd.array([pd.NA] * 3, "Int64")})
    out = evaluate_predictions(df, threshold=0.5)
    assert out["labels"] == "unknown" and out["metrics"] is None
    assert out["predicted_positive_fraction"] == pytest.approx(2 / 3)


def test_run_is_evaluated_beside_its_baselines(work):
    make_workspace(work)
    run = write_run(work)
    result = evaluate_run(work, "r1", n_boot=200)
    model = result["model"]
    assert set(model["cross_validated"]) == {"stage1/events", "stage2"}
    assert model["cross_validated"]["stage1/events"]["threshold"] == 0.7
    cv = model["cross_validated"]["stage2"]["metrics"]
    assert cv["resampled"] == "subjects" and cv["n"] == 80
    assert cv["ci"]["accuracy"]["low"] <= cv["accuracy"] <= cv["ci"]["accuracy"]["high"]
    assert model["target"]["labels"] == "unknown" and model["target"]["n_videos"] == 30
    shift = model["label_shift"]
    assert shift["transductive"] and 0 < shift["em_prior"] < 1 and "em_prior_on_oof" in shift
    assert result["target_labels"] == "unknown" and any("unknown" in n for n in result["notes"])
    # The run knows nothing; the events baseline does: the output must say the model does not beat it.
    assert set(result["baselines"]) == {"events"}
    assert result["versus_baseline"]["stage1/events"]["beats"] is False
    assert any("stage1/events does NOT beat its logistic baseline (events)" in n for n in result["notes"])
    assert "the best logistic baseline (events)" in result["versus_baseline"]["stage2"]["verdict"]
    # with only the text baseline asked for, the events model is not compared with it
    others = evaluate_run(work, "r1", n_boot=50, baselines=["text"])["versus_baseline"]
    assert "stage1/events" not in others and others["stage2"]["baseline"] == "logistic/text"
    json_path, md_path = save_evaluation(result, Run(work, "r1"))
    assert json.loads(json_path.read_text())["model"]["final"] == "stage2"
    text = md_path.read_text()
    assert "logistic (events)" in text and "transductive" in text and "Per subject" in text


def test_known_target_labels_are_scored_and_check_em(work):
    make_workspace(work)
    manifest = read_manifest(work)
    manifest["label"] = manifest["label"].fillna(0)       # reveal test labels (all lose) for this check
    write_manifest(work, manifest)
    write_run(work)
    result = evaluate_run(work, "r1", baselines=["events"], n_boot=200)
    assert result["target_labels"] == "known"
    assert result["model"]["target"]["metrics"]["n"] == 30
    assert "check_with_target_labels" in result["model"]["label_shift"]
    assert "| model stage2 | test |" in render_markdown(result)


def test_command_baselines_only_and_clear_error_without_run(work, capsys):
    make_workspace(work, n_train=40, n_test=10)
    assert main(["evaluate", "--work", str(work), "--run", "base", "--baselines", "[events]", "--n_boot", "100"]) == 0
    assert (work / "runs" / "base" / "evaluation.md").exists()
    assert "majority (events)" in capsys.readouterr().out
    assert main(["evaluate", "--work", str(work), "--run", "nothing"]) == 2
    assert "train the run first" in capsys.readouterr().err
    # the train split is not a target: its honest figures are the out-of-fold ones, never in-sample rows
    assert main(["evaluate", "--work", str(work), "--run", "base", "--split", "train", "--baselines", "[events]"]) == 2
    assert "cross-validated (out-of-fold) figures are already in every evaluation" in capsys.readouterr().err


def test_em_self_check_flags_a_weak_classifier():
    from hiddenemo.eval.evaluate import label_shift_summary
    rng = np.random.default_rng(7)

    def posteriors(n, prior, strength):
        y = (rng.random(n) < prior).astype(int)
        x = np.where(y == 1, 1.0, -1.0) * strength + rng.normal(0, 1, n)
        return y, 1 / (1 + np.exp(-(2 * strength * x + np.log(0.8 / 0.2))))

    y_oof, p_oof = posteriors(400, 0.8, 1.5)
    _, p_target = posteriors(300, 0.4, 1.5)
    strong = label_shift_summary(p_target, 0.8, 0.5, p_oof, y_oof)
    assert strong["reliable"] and abs(strong["em_prior"] - 0.4) < 0.08
    y_oof, p_oof = posteriors(400, 0.8, 0.05)
    _, p_target = posteriors(300, 0.4, 0.05)
    weak = label_shift_summary(p_target, 0.8, 0.5, p_oof, y_oof)
    assert not weak["reliable"] and "unreliable" in weak["warning"]
