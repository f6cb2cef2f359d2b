"""The HTML report, built against a small workspace (synthetic videos ingested by the iMiGUE adapter)
and a run directory this test writes itself in the layout of docs/contracts.md ("Runs")."""
from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from hiddenemo.synthetic import files as syn
from hiddenemo.data.manifest import read_manifest
from hiddenemo.errors import UserError
from hiddenemo.report.page import build_report

SCRIPT = "<script>alert('teacher')</script>"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    from hiddenemo.commands.dataset import imigue

    root = tmp_path_factory.mktemp("report")
    data, work = root / "synthetic", root / "work"
    syn.generate(data, seed=1, n_videos=10, n_frames=40, width=96, height=72, progress=False)
    imigue(labels=data / syn.LABELS_FILE, splits=data / "splits.csv", out=work, videos=data / "videos",
           openpose=data / "openpose", workers=1)
    return work


def write_run(work, run: str, stage2: bool = True, predictions: bool = True) -> None:
    """A run's files as `hiddenemo train` writes them, with probabilities drawn at random."""
    rng = np.random.default_rng(0)
    manifest = read_manifest(work)
    labeled = manifest[manifest["label"].notna() & (manifest["split"] == "train")]
    y = (labeled["label"] == 1).astype(int).to_numpy()             # iMiGUE adapter: classes [lose, win]
    run_dir = work / "runs" / run
    keys = ["stage1/pose", "stage1/events"] + (["stage2"] if stage2 else [])
    oof, selection = [], {}
    for key in keys:
        stage, _, modality = key.partition("/")
        p = np.clip(0.5 * y + rng.uniform(0, 0.5, len(y)), 0, 1)
        oof.append(pd.DataFrame({"video_id": labeled["video_id"].to_numpy(), "stage": stage,
                                 "modality": modality or "fusion", "fold": np.arange(len(y)) % 2,
                                 "p_positive": p, "y_true": y}))
        selection[key] = {"epochs": 2, "epoch_metric": "auroc",
                          "threshold": {"method": "balanced", "metric": "balanced_accuracy", "threshold": 0.45}}
        history = pd.DataFrame([{"epoch": e, "fold": f, "train_loss": 1 / e + f, "val_loss": 1.2 / e,
                                 "val_acc": 0.5, "val_auroc": 0.5 + 0.1 * e} for f in (0, 1) for e in (1, 2, 3)])
        (run_dir / key).mkdir(parents=True, exist_ok=True)
        history.to_csv(run_dir / key / "metrics.csv", index=False)
    selection["final"] = {"model": keys[-1], "how": "test"}
    (run_dir / "oof.csv").write_text(pd.concat(oof).to_csv(index=False))
    (run_dir / "selection.json").write_text(json.dumps(selection))
    (run_dir / "metrics.json").write_text(json.dumps({"cross_validated": {}, "note": "out-of-fold"}))
    (run_dir / "config.yaml").write_text(f"seed: 0\nnote: '{SCRIPT}'\n")
    if predictions:
        test = manifest[manifest["split"] == "test"]
        p = rng.uniform(0, 1, len(test))
        pd.DataFrame({"video_id": test["video_id"], "p_positive": p, "predicted_class": np.where(p >= 0.45, "win", "lose"),
                      "n_votes": 3, "vote_std": rng.uniform(0, 0.1, len(test))}).to_csv(
            run_dir / "predictions.csv", index=False)
        (run_dir / "predictions.json").write_text(json.dumps({"split": "test", "model": keys[-1], "threshold": 0.45}))


def write_teacher(work) -> None:
    from hiddenemo.teacher.schema import Verdict
    from hiddenemo.teacher.store import append_verdict

    for i, vid in enumerate(read_manifest(work)["video_id"]):
        append_verdict(work, Verdict(video_id=vid, teacher_id="behaviour", p_positive=0.3 + 0.05 * i,
                                     label="win" if i % 2 else "lose", text=f"Video {vid}: {SCRIPT} & hands"))


def images(page: str) -> list[str]:
    return re.findall(r'<img alt="([^"]*)" src="data:image/png;base64,', page)


def test_full_report_is_self_contained_and_escaped(workspace):
    write_run(workspace, "full")
    write_teacher(workspace)
    out = build_report(workspace, "full")
    assert out == workspace / "runs" / "full" / "report.html"
    page = out.read_text()
    # Every figure is inline; nothing is fetched from elsewhere.
    assert not re.search(r'(src|href)="(?!data:|#)', page)
    assert set(images(page)) >= {"ROC and PR curves", "confusion matrices", "votes", "training curves",
                                 "frames per video", "keypoint coverage", "skeleton"}
    # Teacher text and config are shown escaped, never as markup.
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&#x27;teacher&#x27;)&lt;/script&gt; &amp; hands" in page
    assert "Verdicts of teacher behaviour" in page and "teacher AUROC" in page
    assert "stage2 (final)" in page and "0.450" in page
    # The skeleton is drawn on a real video frame (the synthetic videos are in the manifest).
    assert "on the video frame" in page


def test_missing_pieces_are_notes_not_crashes(workspace):
    write_run(workspace, "partial", stage2=False, predictions=False)
    page = build_report(workspace, "partial").read_text()
    assert "Stage 2 (fusion with pseudo-labels) was not run" in page
    assert "No predictions.csv" in page
    assert "Baselines (majority, logistic regression per modality) appear here after" in page
    assert "stage1/events (final)" in page                     # the final model as selection.json names it

    (workspace / "runs" / "empty").mkdir()
    page = build_report(workspace, "empty").read_text()
    assert "No trained models in this run yet" in page
    assert "No stage*/metrics.csv" in page
    assert "skeleton" in images(page)                           # the data part needs no run


def test_evaluation_baselines_are_shown(workspace):
    write_run(workspace, "evaluated")
    ci = {k: {"estimate": 0.6, "low": 0.4, "high": 0.8} for k in ("accuracy", "balanced_accuracy", "macro_f1", "auroc")}
    evaluation = {"split": "test", "level": 0.95, "n_boot": 2000, "model": {"cross_validated": {}, "target": {}},
                  "baselines": {"events": {"logistic": {"cross_validated": {
                      "at 0.5": {"threshold": 0.5, "metrics": {"n": 10, "ci": ci}}}}}},
                  "notes": ["stage2 does NOT beat its logistic baseline (events)"]}
    (workspace / "runs" / "evaluated" / "evaluation.json").write_text(json.dumps(evaluation))
    page = build_report(workspace, "evaluated").read_text()
    assert "logistic (events)" in page and "0.600 [0.40, 0.80]" in page and "does NOT beat" in page


def test_unknown_run_is_a_user_error(workspace):
    with pytest.raises(UserError, match="does not exist"):
        build_report(workspace, "never-trained")
