"""kill -9 of `hiddenemo extract`, `teach` and `train` at seeded random points, several times each,
then a resume: the outputs equal an uninterrupted run's (arrays and verdicts byte for byte, training
metrics within TRAIN_TOLERANCE), and nothing a killed run left is ever read as complete."""
from __future__ import annotations

import numpy as np
from faults.campaign import (check_jsonl, check_run, check_store, command, copy_workspace, extract_progress,
                             kill_and_resume, metric_differences, run_to_end, store_differences, teach_progress,
                             train_progress, verdicts)
from faults.conftest import EXTRACT

KILLS = 3
SEED = 8
# Resume is exact by design (seeded dropout, shuffles and draws; optimizer state restored), so the
# tolerance only absorbs float summation order; any real divergence is far larger.
TRAIN_TOLERANCE = 1e-6


def test_extract_killed_and_resumed_equals_uninterrupted(base_workspace, reference, tmp_path, ledger):
    work = copy_workspace(base_workspace, tmp_path / "work")
    args = command("extract", "--work", str(work), *EXTRACT)
    result = kill_and_resume(args, lambda: extract_progress(work), np.random.default_rng(SEED), KILLS,
                             max_k=6, check=lambda: check_store(work))
    run_to_end(args)
    lost = store_differences(reference, work)
    for _ in range(result.injected):
        ledger.fault(survived=not lost, lost=len(lost))
    assert result.injected >= 1 and not lost, lost
    assert not list((work / "store").rglob("*.npy.tmp"))


def test_teach_killed_and_resumed_equals_uninterrupted(reference, tmp_path, ledger):
    work = copy_workspace(reference, tmp_path / "work", drop=("teacher", "runs", "status/teach.jsonl"))
    args = command("teach", "--work", str(work))
    path = work / "teacher" / "behaviour.jsonl"
    result = kill_and_resume(args, lambda: teach_progress(work), np.random.default_rng(SEED + 1), KILLS,
                             max_k=2, max_delay=0.0, check=lambda: check_jsonl(path))
    run_to_end(args)
    expected, got = verdicts(reference, "behaviour"), verdicts(work, "behaviour")
    lost = sorted(set(expected) - set(got)) + sorted(v for v in expected if v in got and got[v] != expected[v])
    for _ in range(result.injected):
        ledger.fault(survived=not lost, lost=len(lost))
    assert result.injected >= 1 and not lost, lost


def test_train_killed_and_resumed_matches_uninterrupted(reference, train_config, tmp_path, ledger):
    work = copy_workspace(reference, tmp_path / "work", drop=("runs",))
    args = command("train", "--work", str(work), "--run", "r", "--config", str(train_config))
    run = work / "runs" / "r"
    result = kill_and_resume(args, lambda: train_progress(work, "r"), np.random.default_rng(SEED + 2), KILLS,
                             max_k=4, max_delay=1.0, check=lambda: check_run(run))
    run_to_end(args)
    differences = metric_differences(reference / "runs" / "r", run, TRAIN_TOLERANCE)
    for _ in range(result.injected):
        ledger.fault(survived=not differences, lost=len(differences))
    assert result.injected >= 1 and not differences, differences
