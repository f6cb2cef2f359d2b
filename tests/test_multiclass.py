"""Tasks of more than two classes, end to end: the synthetic generator's graded levels, a workspace
from `dataset folder --openpose`, training with a softmax head, p_<class> columns in every prediction
file, arg-max decisions (optionally at the EM class prior), metrics with intervals, evaluate, report,
ensemble, export and apply; and the pieces (metrics, loss, EM prior, soft pseudo-labels) against
references."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
import yaml

from hiddenemo.cli import main

TINY = {
    "seed": 0, "threads": 1,
    "sampling": {"n_pose": 32, "offsets": [4], "votes": 2},
    "model": {"modalities": ["pose"], "dim": 16, "candidates": {"pose": ["pose-stats"]},
              "encoder_args": {"pose-mlp": {"frame_dim": 16, "point_hidden": 4, "depth": 1, "heads": 2}}},
    "stage1": {"epochs": 3, "lr": 3e-3, "batch_size": 8, "class_balanced": True, "focal_gamma": 0.0},
    "stage2_enabled": False,
    "selection": {"folds": 3, "epoch_metric": "macro_f1"},
    "pseudo": {"teacher": None},
}
CLASSES = ["calm", "stressed", "tense"]              # `dataset folder` sorts the class names


@pytest.fixture(scope="module")
def levels(tmp_path_factory):
    """A 3-level synthetic set, its workspace (test labels known, for scoring only) and a trained run."""
    root = tmp_path_factory.mktemp("levels")
    data, work = root / "data", root / "work"
    assert main(["dataset", "synthetic", "--out", str(data), "--n_videos", "27", "--n_frames", "40",
                 "--levels", "3"]) == 0
    labels = pd.read_csv(data / "levels.csv", dtype=str).fillna("")
    withheld = pd.read_csv(data / "target_levels.csv", dtype=str).set_index("video_id")["label"]
    labels.loc[labels["label"] == "", "label"] = labels["video_id"].map(withheld)
    labels.to_csv(root / "levels_all.csv", index=False)
    assert main(["dataset", "folder", "--videos", str(data / "videos"), "--labels", str(root / "levels_all.csv"),
                 "--openpose", str(data / "openpose"), "--out", str(work)]) == 0
    config = root / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY))
    for seed in (0, 1):
        assert main(["train", "--work", str(work), "--run", f"s{seed}", "--config", str(config),
                     "--seed", str(seed)]) == 0
    return {"root": root, "data": data, "work": work, "run": work / "runs" / "s0"}


def test_the_generator_grades_cues_between_win_and_lose():
    from hiddenemo.synthetic.plan import CUES, plan_dataset

    plans = plan_dataset(0, 30, 60, levels=3)
    assert sorted({p.level for p in plans}) == [0, 1, 2]
    assert {p.stress for p in plans} == {0.0, 0.5, 1.0}
    lip = next(c for c in CUES if c.name == "lip_press")
    assert lip.rate(0.0) == lip.rate_win and lip.rate(1.0) == lip.rate_lose
    assert lip.rate(0.5) == pytest.approx((lip.rate_win + lip.rate_lose) / 2)
    # Two classes are drawn as before the option existed: no level, the same labels and episodes.
    binary = plan_dataset(0, 30, 60)
    assert all(p.level is None for p in binary) and binary[0].episodes == plan_dataset(0, 30, 60, levels=2)[0].episodes


def test_training_writes_class_probabilities_and_decides_by_argmax(levels):
    run = levels["run"]
    oof = pd.read_csv(run / "oof.csv")
    columns = [f"p_{c}" for c in CLASSES]
    assert list(oof.columns) == ["video_id", "stage", "modality", "fold", *columns, "y_true"]
    np.testing.assert_allclose(oof[columns].sum(1), 1.0, atol=1e-6)          # float32 softmax
    predicted = pd.read_csv(run / "predictions.csv", dtype={"video_id": str})
    assert list(predicted.columns) == ["video_id", *columns, "predicted_class", "n_votes", "vote_std"]
    argmax = np.asarray(CLASSES)[predicted[columns].to_numpy().argmax(1)]
    assert (predicted["predicted_class"] == argmax).all()
    meta = json.loads((run / "predictions.json").read_text())
    assert meta["decision"]["method"] == "argmax" and meta["decision"]["class_prior"] == "train"
    selection = json.loads((run / "selection.json").read_text())
    assert selection["classes"] == CLASSES and selection["final"]["model"].startswith("stage1/pose")
    metrics = json.loads((run / "metrics.json").read_text())
    test = metrics["test"]
    assert len(test["confusion"]) == 3 and sum(map(sum, test["confusion"])) == len(predicted)
    for name in ("accuracy", "balanced_accuracy", "macro_f1", "auroc"):
        ci = test["ci"][name]
        assert ci["low"] <= ci["estimate"] <= ci["high"]
    assert len(test["per_class_recall"]) == 3 and len(test["per_class_recall_ci"]) == 3


def test_em_class_prior_is_transductive_and_said_so(levels, tmp_path):
    from hiddenemo.train.config import TrainConfig, from_dict
    from hiddenemo.train.run import train_run

    work = tmp_path / "work"
    shutil.copytree(levels["work"], work, ignore=shutil.ignore_patterns("runs"))
    train_run(work, "em", from_dict(TrainConfig, {**TINY, "selection": {**TINY["selection"], "class_prior": "em"}}))
    meta = json.loads((work / "runs" / "em" / "predictions.json").read_text())
    decision = meta["decision"]
    assert decision["class_prior"] == "em" and "transductive" in decision["note"]
    assert len(decision["target_prior"]) == 3 and sum(decision["target_prior"]) == pytest.approx(1.0)


def test_evaluate_report_ensemble_and_ablate_summary(levels):
    work = levels["work"]
    assert main(["evaluate", "--work", str(work), "--run", "s0", "--baselines", "[pose]", "--n_boot", "200"]) == 0
    evaluation = json.loads((levels["run"] / "evaluation.json").read_text())
    assert evaluation["classes"] == CLASSES
    logistic = evaluation["baselines"]["pose"]["logistic"]
    assert logistic["target"]["metrics"]["n"] == 9 and logistic["cross_validated"]["arg-max"]["metrics"]["macro_f1"] >= 0
    assert evaluation["model"]["label_shift"]["transductive"]
    markdown = (levels["run"] / "evaluation.md").read_text()
    assert "per class" in markdown and "| calm |" in markdown
    assert main(["report", "--work", str(work), "--run", "s0"]) == 0
    page = (levels["run"] / "report.html").read_text()
    assert "One-vs-rest ROC" in page and "arg-max" in page

    assert main(["ensemble", "--work", str(work), "--run", "both", "--runs", "[s0, s1]"]) == 0
    both = work / "runs" / "both"
    table = pd.read_csv(both / "predictions.csv", dtype={"video_id": str}).set_index("video_id")
    members = [pd.read_csv(work / "runs" / m / "predictions.csv", dtype={"video_id": str}).set_index("video_id")
               for m in ("s0", "s1")]
    np.testing.assert_allclose(table["p_tense"], (members[0]["p_tense"] + members[1]["p_tense"]).loc[table.index] / 2)
    assert main(["evaluate", "--work", str(work), "--run", "both", "--baselines", "[]"]) == 0

    from hiddenemo.ablate import summarise
    per_run = pd.DataFrame([{"variant": "a", "seed": s, "run": f"s{s}", "model": "stage1/pose",
                             **{m: 0.5 + 0.1 * s for m in ("accuracy", "balanced_accuracy", "macro_f1", "auroc")}}
                            for s in (0, 1)])
    assert summarise(work, per_run, "a")["vs_reference"].tolist() == ["reference"]


def test_export_and_apply_give_predicts_class_probabilities(levels, tmp_path):
    work, data = levels["work"], levels["data"]
    assert main(["export", "--work", str(work), "--run", "s0", "--out", str(tmp_path / "model")]) == 0
    description = json.loads((tmp_path / "model" / "model.json").read_text())
    assert description["classes"] == CLASSES and description["positive"] is None
    assert "arg-max" in (tmp_path / "model" / "README.md").read_text()
    predicted = pd.read_csv(levels["run"] / "predictions.csv", dtype={"video_id": str})
    new = tmp_path / "new"
    new.mkdir()
    for video_id in predicted["video_id"][:2]:
        shutil.copy(data / "videos" / f"{video_id}.mp4", new)
    assert main(["apply", "--model", str(tmp_path / "model"), "--videos", str(new), "--out", str(tmp_path / "p.csv"),
                 "--cache", str(tmp_path / "cache"), "--openpose", str(data / "openpose")]) == 0
    applied = pd.read_csv(tmp_path / "p.csv", dtype={"video_id": str}).set_index("video_id")
    columns = [f"p_{c}" for c in CLASSES]
    assert list(applied.columns) == ["predicted_class", *columns, "n_votes", "vote_std"]
    inside = predicted.set_index("video_id").loc[applied.index]
    np.testing.assert_allclose(applied[columns], inside[columns], rtol=0, atol=1e-6)
    assert (applied["predicted_class"] == inside["predicted_class"]).all()


def test_multiclass_metrics_match_sklearn():
    from sklearn.metrics import balanced_accuracy_score, confusion_matrix, f1_score, roc_auc_score

    from hiddenemo.eval.bootstrap import bootstrap_metrics

    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 80)
    P = rng.dirichlet(np.ones(4), 80)
    P[np.arange(80), y] += 0.4
    P /= P.sum(1, keepdims=True)
    m = bootstrap_metrics(y, P, n_boot=300)
    pred = P.argmax(1)
    assert m["macro_f1"] == pytest.approx(f1_score(y, pred, average="macro"))
    assert m["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, pred))
    assert m["auroc"] == pytest.approx(roc_auc_score(y, P, multi_class="ovr"))
    assert m["confusion"] == confusion_matrix(y, pred).tolist()
    for name, ci in m["ci"].items():
        assert ci["low"] <= ci["estimate"] <= ci["high"], name


def test_softmax_focal_loss_is_cross_entropy_at_gamma_zero_and_focuses_above():
    from hiddenemo.models.losses import softmax_focal_loss

    logits = torch.randn(6, 3)
    y = torch.tensor([0, 1, 2, 2, 1, 0])
    onehot = F.one_hot(y, 3).float()
    w = torch.tensor([1.0, 2.0, 1.0, 0.5, 1.0, 1.0])
    reference = (F.cross_entropy(logits, y, reduction="none") * w).sum() / w.sum()
    assert softmax_focal_loss(logits, onehot, gamma=0.0, weight=w) == pytest.approx(float(reference), rel=1e-6)
    assert softmax_focal_loss(logits, onehot, gamma=2.0) < softmax_focal_loss(logits, onehot, gamma=0.0)
    soft = torch.tensor([[0.7, 0.2, 0.1]]).repeat(6, 1)           # a teacher's distribution as target
    assert torch.isfinite(softmax_focal_loss(logits, soft))


def test_em_recovers_a_shifted_class_prior():
    from hiddenemo.eval.labelshift import em_class_prior

    rng = np.random.default_rng(1)
    means = np.eye(3) * 2.0
    train_prior, target_prior = np.full(3, 1 / 3), np.array([0.6, 0.3, 0.1])
    y = rng.choice(3, 3000, p=target_prior)
    x = means[y] + rng.normal(size=(3000, 3))
    # Exact posteriors under the training prior (equal priors, unit-variance Gaussians).
    log_lik = -0.5 * ((x[:, None, :] - means[None]) ** 2).sum(-1)
    P = np.exp(log_lik - log_lik.max(1, keepdims=True))
    P /= P.sum(1, keepdims=True)
    prior, adjusted = em_class_prior(P, train_prior)
    np.testing.assert_allclose(prior, target_prior, atol=0.03)
    assert (adjusted.argmax(1) == y).mean() > (P.argmax(1) == y).mean()


def test_soft_pseudo_labels_over_classes():
    from hiddenemo.teacher.policy import PseudoLabelPolicy, apply_class_policy

    answers = {"a": np.array([0.8, 0.1, 0.1]), "b": np.array([0.4, 0.35, 0.25]), "c": np.array([0.1, 0.1, 0.8])}
    soft = apply_class_policy(answers, PseudoLabelPolicy(mode="soft", min_confidence=0.5), 3)
    assert soft["video_id"].tolist() == ["a", "c"]
    np.testing.assert_allclose(soft[["target_0", "target_1", "target_2"]].to_numpy(), [[0.8, 0.1, 0.1], [0.1, 0.1, 0.8]])
    hard = apply_class_policy(answers, PseudoLabelPolicy(class_balance=True), 3)
    assert hard[["target_0", "target_1", "target_2"]].to_numpy().tolist()[1] == [1.0, 0.0, 0.0]
    # Two of three videos say class 0, one says class 2: each predicted class carries the same total weight.
    assert hard.groupby(hard[["target_0", "target_1", "target_2"]].to_numpy().argmax(1))["weight"].sum().tolist() \
        == pytest.approx([1.5, 1.5])


def test_a_two_class_head_keeps_one_logit():
    from hiddenemo.models.fusion import head_outputs

    assert head_outputs(2) == 1 and head_outputs(5) == 5


def test_a_run_started_before_class_prior_existed_keeps_its_config(tmp_path):
    from hiddenemo.rundir import Run
    from hiddenemo.train.config import TrainConfig, to_dict

    run = Run(tmp_path, "old")
    run.dir.mkdir(parents=True)
    before = to_dict(TrainConfig())
    del before["selection"]["class_prior"]                 # as config.yaml was written before the field
    (run.dir / "config.yaml").write_text(yaml.safe_dump(before))
    assert run.same_config(TrainConfig()) and not run.same_config(TrainConfig(seed=1))
