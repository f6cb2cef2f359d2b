"""Pseudo-label calibration: a teacher that ranks well but leans to one class gives pseudo-labels at
the training prior once calibrated on the labeled training videos, and never reads test labels."""
from __future__ import annotations

import numpy as np
import pytest
import pandas as pd

from hiddenemo.data.manifest import DatasetInfo, read_manifest, write_manifest
from hiddenemo.data.workspace import Workspace
from hiddenemo.errors import UserError
from hiddenemo.teacher.policy import PseudoLabelPolicy, calibrated, pseudo_labels
from hiddenemo.teacher.schema import Verdict
from hiddenemo.teacher.store import append_verdict, read_verdicts


def _workspace(work, test_labels):
    # Training: the teacher says 0.35 for every win and 0.15 for every lose: perfectly ranked, all "lose".
    train = [(f"tr{i}", i % 4 != 0) for i in range(40)]
    rows = [{"video_id": v, "label": int(win), "split": "train"} for v, win in train]
    rows += [{"video_id": f"te{i}", "label": test_labels, "split": "test"} for i in range(10)]
    write_manifest(work, pd.DataFrame(rows))
    DatasetInfo("t", ["lose", "win"], "win").save(work)
    for v, win in train:
        append_verdict(work, Verdict(video_id=v, teacher_id="rules", p_positive=0.35 if win else 0.15))
    for i in range(10):   # target videos: the first 7 look like wins to the teacher, the last 3 like losses
        append_verdict(work, Verdict(video_id=f"te{i}", teacher_id="rules", p_positive=0.35 if i < 7 else 0.15))


def test_calibration_moves_a_biased_teacher_to_the_training_prior(work):
    _workspace(work, test_labels=pd.NA)
    raw = pseudo_labels(work, "rules", PseudoLabelPolicy())
    assert raw["target"].sum() == 0                       # uncalibrated: every target video "lose"
    cal = pseudo_labels(work, "rules", PseudoLabelPolicy(calibrate=True))
    assert cal["target"].tolist() == [1.0] * 7 + [0.0] * 3


def test_calibration_ignores_labels_outside_the_training_split(work):
    _workspace(work, test_labels=0)                        # a labeled test split, all "lose"
    assert pseudo_labels(work, "rules", PseudoLabelPolicy(calibrate=True)).empty   # labeled: not pseudo-labeled
    # The calibration is fitted on the training split only: the same map with or without test labels.
    with_test = calibrated(Workspace(work), read_verdicts(work, "rules"), np.array([0.15, 0.35]))
    manifest = read_manifest(work)
    manifest["label"] = manifest["label"].where(manifest["split"] == "train")
    write_manifest(work, manifest)
    without = calibrated(Workspace(work), read_verdicts(work, "rules"), np.array([0.15, 0.35]))
    assert np.allclose(with_test, without)


def test_balanced_pseudo_labels_keep_what_a_weak_teacher_says_about_the_rarer_class(work):
    # Training: 3 wins to 1 lose; the teacher ranks them only loosely (wins 0.55 or 0.45 alternately,
    # losses 0.45), so calibrated to the 75 % prior every answer maps above 0.5: all pseudo-labels "win".
    train = [(f"tr{i}", i % 4 != 0) for i in range(40)]
    write_manifest(work, pd.DataFrame([{"video_id": v, "label": int(win), "split": "train"} for v, win in train]
                                      + [{"video_id": f"te{i}", "label": pd.NA, "split": "test"} for i in range(10)]))
    DatasetInfo("t", ["lose", "win"], "win").save(work)
    for i, (v, win) in enumerate(train):
        append_verdict(work, Verdict(video_id=v, teacher_id="rules", p_positive=0.55 if win and i % 2 else 0.45))
    for i in range(10):
        append_verdict(work, Verdict(video_id=f"te{i}", teacher_id="rules", p_positive=0.55 if i < 6 else 0.45))
    at_half = pseudo_labels(work, "rules", PseudoLabelPolicy(calibrate=True))
    assert at_half["target"].tolist() == [1.0] * 10              # nothing said about the rarer class
    balanced = pseudo_labels(work, "rules", PseudoLabelPolicy(calibrate=True, balanced=True))
    assert balanced["target"].tolist() == [1.0] * 6 + [0.0] * 4   # the teacher's ranking kept
    with pytest.raises(UserError, match="needs calibrate"):
        PseudoLabelPolicy(balanced=True)


def test_a_teacher_without_verdicts_is_named_beside_the_ones_present(work, caplog):
    _workspace(work, test_labels=pd.NA)                    # verdicts of teacher "rules" only
    assert pseudo_labels(work, "behaviour", PseudoLabelPolicy()).empty
    assert "teacher behaviour has no verdicts" in caplog.text and "teachers there: rules" in caplog.text
