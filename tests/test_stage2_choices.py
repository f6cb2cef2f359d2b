"""Stage 2's two measured choices: pseudo-labels kept only when they help the videos they label
(`pseudo.in_folds`, `pseudo.use: if-better`), and late fusion's mix started from the stage-1
out-of-fold predictions (`model.late_mix: stacked`)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import save_file
from train_fixtures import TINY, add_teacher, hide_test_labels, make_workspace, tiny_config

from hiddenemo.errors import UserError
from hiddenemo.models import Classifier, FusionModel, build_encoder
from hiddenemo.report.page import build_report
from hiddenemo.rundir import Run
from hiddenemo.teacher.config import PseudoLabelPolicy
from hiddenemo.teacher.policy import pseudo_labels
from hiddenemo.train.build import load_encoders
from hiddenemo.train.config import PseudoLabelConfig
from hiddenemo.train.run import train_run
from hiddenemo.train.stacking import stacked_mix


def test_stacked_mix_trusts_what_carries_out_of_fold_and_reads_only_its_rows():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    good = 1 / (1 + np.exp(-(2.0 * y - 1 + rng.normal(0, 1, 200))))      # follows the label
    noise = rng.random(200)                                                 # no signal
    against = 1 - good                                                      # worse than chance
    rows = np.arange(200) < 120
    mix = stacked_mix({"pose": good, "frames": noise, "text": against}, y, rows)
    assert sum(mix.values()) == pytest.approx(1.0) and min(mix.values()) >= 0
    assert mix["pose"] > 0.8 and mix["text"] == 0.0                       # no negative votes
    # The rows left out (a stage-2 fold's own videos) do not move the weights, whatever their labels.
    flipped = y.copy()
    flipped[~rows] = 1 - flipped[~rows]
    assert stacked_mix({"pose": good, "frames": noise, "text": against}, flipped, rows) == mix
    # Nothing beats chance: the plain average.
    assert stacked_mix({"pose": against, "text": against}, y, rows) == {"pose": 0.5, "text": 0.5}


def test_late_fusion_loads_its_starting_mix(tmp_path):
    torch.manual_seed(0)
    names = {"frames": "frames-stats", "text": "text-linear"}
    paths = {m: tmp_path / f"{m}.safetensors" for m in names}
    for m, name in names.items():
        save_file(Classifier(build_encoder(name, in_dim=8, dim=8), dim=8).state_dict(), str(paths[m]))
    model = FusionModel({m: build_encoder(name, in_dim=8, dim=8) for m, name in names.items()}, dim=8, fusion="late")
    load_encoders(model, paths, mix={"text": 0.75, "frames": 0.25})
    assert model.head.mix.tolist() == [0.25, 0.75]                         # in the model's modality order


def test_pseudo_labels_for_a_folds_held_out_videos_leave_the_calibration(work):
    manifest = make_workspace(work, n_train=30, n_test=8)
    add_teacher(work, manifest)
    hide_test_labels(work)
    policy = PseudoLabelPolicy(calibrate=True, balanced=True)
    targets = pseudo_labels(work, "rules", policy)
    held = frozenset(manifest["video_id"][:10])
    with_held = pseudo_labels(work, "rules", policy, as_unlabeled=held)
    assert set(with_held["video_id"]) == set(targets["video_id"]) | held
    # Their labels are not in the calibration: flipping them changes nothing.
    from hiddenemo.data.manifest import read_manifest, write_manifest
    m = read_manifest(work)
    m.loc[m["video_id"].isin(held), "label"] = 1 - m.loc[m["video_id"].isin(held), "label"]
    write_manifest(work, m)
    again = pseudo_labels(work, "rules", policy, as_unlabeled=held)
    assert again.equals(with_held)


def test_if_better_needs_the_folds_to_carry_the_pseudo_labels():
    with pytest.raises(UserError, match="in_folds"):
        PseudoLabelConfig(use="if-better")


@pytest.mark.parametrize("accuracy", [0.95, 0.3])
def test_stage2_keeps_pseudo_labels_only_when_they_help_and_says_so(work, accuracy):
    manifest = make_workspace(work, n_train=30, n_test=8)
    add_teacher(work, manifest, accuracy=accuracy)
    hide_test_labels(work)
    config = tiny_config(model={**TINY["model"], "fusion": "late", "late_mix": "stacked"},
                         pseudo={"teacher": "rules", "in_folds": True, "use": "if-better",
                                 "policy": {"calibrate": True, "balanced": True}})
    train_run(work, "r", config)
    run = Run(work, "r")
    sel = json.loads((run.dir / "selection.json").read_text())["stage2"]
    choice = sel["pseudo_labels"]
    assert choice["kept"] == (choice["auroc_with"] >= choice["auroc_without"])
    for fold_dir in ("stage2/fold0", "stage2/without-pseudo/fold0"):
        assert (run.dir / fold_dir / "done.json").exists()                 # both were trained
    transductive = " ".join(run.transductive)
    if choice["kept"]:
        assert sel["n_pseudo"] == 8 and "dir" not in sel and "pseudo-labels of 8" in transductive
    else:
        assert sel["n_pseudo"] == 0 and sel["dir"] == "stage2/without-pseudo" and "pseudo-labels" not in transductive
    assert run.predictions().table["video_id"].nunique() == 8             # predicts from the kept arm
    for weights in sel["late_mix"].values():                               # fold0..2 and final
        assert sum(weights.values()) == pytest.approx(1.0, abs=1e-3)
    page = build_report(work, "r").read_text()                             # the report says which it kept
    assert f"kept {'with' if choice['kept'] else 'without'}" in page
    assert run.histories()["stage2"].equals(pd.read_csv(run.dir / sel.get("dir", "stage2") / "metrics.csv"))


def test_epoch_zero_lets_cross_validation_keep_the_starting_weights(work):
    make_workspace(work, n_train=24, n_test=6)
    hide_test_labels(work)
    model = {**TINY["model"], "modalities": ["pose", "text"], "fusion": "late", "late_mix": "stacked"}
    plain = tiny_config(model=model)
    train_run(work, "plain", plain)
    zero = tiny_config(model=model, stage2={**TINY["stage2"], "epoch_zero": True})
    train_run(work, "zero", zero)
    for fold in range(3):
        before = json.loads((work / "runs" / "plain" / "stage2" / f"fold{fold}" / "state.json").read_text())
        after = json.loads((work / "runs" / "zero" / "stage2" / f"fold{fold}" / "state.json").read_text())
        assert after["history"][0]["epoch"] == 0 and np.isnan(after["history"][0]["train_loss"])
        assert len(after["history"][0]["val_probs"]) == len(before["history"][0]["val_probs"])
        assert after["history"][1:] == before["history"]        # validating the start changes no later epoch
    assert Run(work, "zero").histories()["stage2"]["epoch"].min() == 0

    # At learning rate 0 every epoch scores as the start does; ties go to the earliest: no training.
    frozen = tiny_config(model=model, stage2={**TINY["stage2"], "epoch_zero": True, "lr": 0.0},
                         selection={**TINY["selection"], "final_model": "retrain"})
    train_run(work, "frozen", frozen)
    run = Run(work, "frozen")
    assert run.selection["stage2"]["epochs"] == 0
    assert sorted(p.name for p in (run.dir / "stage2" / "fold0").glob("epoch-*")) == ["epoch-0.safetensors"]
    assert (run.dir / "stage2" / "final" / "epoch-0.safetensors").exists()
    assert run.predictions().table["video_id"].nunique() == 6
    assert "stage2: epoch 0 (the starting weights" in build_report(work, "frozen").read_text()
