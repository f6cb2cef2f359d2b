"""The teacher-noise study: the simulated teacher flips exactly the asked share; the held-out subjects
never reach training as labeled rows (folds, thresholds, calibration); a killed study resumes."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from train_fixtures import TINY, study_workspace

from hiddenemo.cli import main
from hiddenemo.errors import UserError
from hiddenemo.noise_study import crossing_point, simulated_teacher
from hiddenemo.train.config import NoiseStudy

CONFIG = {**TINY, "model": {**TINY["model"], "modalities": ["text", "events"]},
          "stage1": {"epochs": 2, "lr": 3e-3, "batch_size": 8}, "stage2": {"epochs": 1, "lr": 1e-3, "batch_size": 8},
          "selection": {"folds": 2}, "pseudo": {"teacher": "rules", "policy": {"calibrate": True, "weight": 0.5}},
          "self_training": {"rounds": 1, "keep": 0.5, "weight": 0.5}}


@pytest.mark.parametrize("kind", ["uniform", "positives", "negatives"])
@pytest.mark.parametrize("rate", [0.0, 0.1, 0.25, 0.4, 0.5])
def test_simulated_teacher_flips_exactly_the_asked_share(rate, kind):
    y = np.array([1] * 57 + [0] * 43)
    for seed in range(3):
        labels = simulated_teacher(y, rate, kind, np.random.default_rng(seed))
        wrong = labels != y
        if kind == "uniform":
            assert wrong.sum() == round(rate * len(y))
        else:                                                # class-dependent: that share of one class only
            cls = 1 if kind == "positives" else 0
            assert wrong[y == cls].sum() == round(rate * (y == cls).sum()) and not wrong[y != cls].any()


def test_crossing_point_interpolates_between_grid_points():
    table = pd.DataFrame({"kind": "simulated", "teacher_noise": [0.0, 0.2, 0.4], "gain_auroc": [0.1, 0.02, -0.02]})
    assert crossing_point(table)["rate"] == pytest.approx(0.3)
    assert crossing_point(table.assign(gain_auroc=[0.1, 0.1, 0.1]))["rate"] is None


@pytest.fixture
def workspace(tmp_path):
    return study_workspace(tmp_path, CONFIG, n_train=28)


def test_held_out_subjects_never_reach_training(workspace, monkeypatch, capsys):
    """Every labeled row any stage trains or validates on, and every answer the teacher is calibrated
    on, comes from the source subjects; the target's videos enter only as pseudo-labeled rows."""
    import hiddenemo.train.stages as stages
    from hiddenemo.teacher import policy
    from hiddenemo.noise_study import run_noise_study

    work, base = workspace
    seen = []
    real_cv, real_answers = stages.cross_validate, policy.training_answers

    def spy_cv(ctx, modalities, stage, labeled, folds, extra, out, **kw):
        seen.append(("labeled", out, set(labeled["video_id"])))
        return real_cv(ctx, modalities, stage, labeled, folds, extra, out, **kw)

    def spy_answers(ws, verdicts, exclude=frozenset()):
        seen.append(("calibration", None, set(exclude)))
        return real_answers(ws, verdicts, exclude)

    monkeypatch.setattr(stages, "cross_validate", spy_cv)
    monkeypatch.setattr(policy, "training_answers", spy_answers)
    import hiddenemo.train.selftrain as selftrain
    monkeypatch.setattr(selftrain, "cross_validate", spy_cv)
    run_noise_study(work, 1, base, NoiseStudy(noise_rates=[0.0, 0.5], splits=2))
    cells = work / "ablations" / "teacher-noise" / "cells"
    for split in (0, 1):
        target = set(pd.read_csv(cells / f"s0-t{split}of2" / "target.csv", dtype={"video_id": str})["video_id"])
        assert target
        mine = [(what, ids) for what, out, ids in seen if out is None or f"s0-t{split}of2" in str(out)]
        assert any(what == "calibration" and ids == target for what, ids in mine)
        assert all(not (ids & target) for what, ids in mine if what == "labeled")
    cells_csv = pd.read_csv(work / "ablations" / "teacher-noise_cells.csv")
    assert set(cells_csv["arm"]) == {"none", "noise-0.00", "noise-0.50", "real-w0.5-c0", "self-training"}
    half = cells_csv[cells_csv["arm"] == "noise-0.50"]
    assert (half["teacher_noise"] == (half["n_target"] * 0.5).round() / half["n_target"]).all()
    assert (work / "ablations" / "teacher-noise.png").stat().st_size > 1000

    # `train` then prints guidance from the study, without changing what it trains.
    capsys.readouterr()
    assert main(["train", "--config", str(base), "--work", str(work), "--run", "r"]) == 0
    printed = capsys.readouterr()
    json.loads(printed.out)                                  # stdout stays train's JSON
    assert "guidance (not applied): teacher rules's pseudo-labels are wrong on" in printed.err
    assert "teacher-noise study" in printed.err and "Measured with this teacher on held-out subjects" in printed.err
    assert "=> stage 2 with these pseudo-labels:" in printed.err
    assert "--pseudo.use if-better" in printed.err                # the per-run check, offered


def test_study_resumes_after_a_kill(workspace, capsys):
    import hiddenemo.noise_study as ns

    work, base = workspace
    args = ["ablate", "--work", str(work), "--study", "teacher-noise", "--seeds", "1", "--base", str(base),
            "--splits", "2", "--noise_rates", "[0.0,0.3]", "--real", "false"]
    calls = {"n": 0}
    real_stage2 = ns._stage2

    def dies_on_third(*a, **kw):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real_stage2(*a, **kw)

    ns._stage2 = dies_on_third
    try:
        assert main(args) != 0
    finally:
        ns._stage2 = real_stage2
    results = sorted((work / "ablations" / "teacher-noise" / "cells").rglob("result.json"))
    assert len(results) == 2                                 # two arms finished before the kill
    stamps = {p: p.stat().st_mtime_ns for p in results}
    fits = {p: p.stat().st_mtime_ns for p in (work / "ablations").rglob("done.json")}
    assert main(args) == 0
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items())      # finished arms were not redone
    assert all(p.stat().st_mtime_ns == t for p, t in fits.items())        # nor any finished fit
    assert len(list((work / "ablations" / "teacher-noise" / "cells").rglob("result.json"))) == 6
    table = json.loads((work / "ablations" / "teacher-noise.json").read_text())
    assert [r["arm"] for r in table["rows"]] == ["stage 1", "none", "noise-0.00", "noise-0.30"]
    assert "Crossing point" in capsys.readouterr().out


def test_study_with_workers_scores_what_one_process_scores(tmp_path):
    """Each stage's fits train at once on the base config's workers; the cells do not change."""
    cells = {}
    for workers in (1, 2):
        work, base = study_workspace(tmp_path / f"w{workers}", {**CONFIG, "workers": workers}, n_train=28)
        assert main(["ablate", "--work", str(work), "--study", "teacher-noise", "--seeds", "1", "--base", str(base),
                     "--splits", "2", "--noise_rates", "[0.0]", "--real", "false"]) == 0
        cells[workers] = (work / "ablations" / "teacher-noise_cells.csv").read_text()
    assert cells[1] == cells[2]
