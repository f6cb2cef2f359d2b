"""Several processes on one workspace: two `extract` or two `teach` started together split the
videos (each computed once, both exit 0, the outputs equal one process's), one of two killed -9 has
its video taken over by the other, and a second `train` of a running run is refused."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

from faults.campaign import ENV, command, copy_workspace, kill_after_extract_progress, metric_differences, store_differences, \
    verdicts
from faults.conftest import EXTRACT
from faults.test_kill_resume import TRAIN_TOLERANCE


def start(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen(args, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen, timeout: float = 900) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def status_lines(work: Path, stage: str) -> list[dict]:
    path = work / "status" / f"{stage}.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def video_ids(work: Path) -> list[str]:
    from hiddenemo.data.manifest import read_manifest
    return sorted(read_manifest(work)["video_id"])


def summary(out: str) -> dict:
    return json.loads(next(line for line in out.splitlines() if line.startswith("{")))


def test_two_extracts_at_once_split_the_videos(base_workspace, reference, tmp_path, ledger):
    work = copy_workspace(base_workspace, tmp_path / "work")
    args = command("extract", "--work", str(work), *EXTRACT)
    results = [finish(p) for p in [start(args), start(args)]]
    codes = [code for code, _, _ in results]
    sums = [summary(out) for code, out, _ in results if code == 0]
    computed = [r["video_id"] for r in status_lines(work, "extract") if r["status"] == "ok"]
    lost = store_differences(reference, work)
    once = sorted(computed) == video_ids(work)
    ledger.fault(survived=codes == [0, 0] and once and not lost, mid_work=False, lost=len(lost))
    assert codes == [0, 0], [err[-2000:] for _, _, err in results]
    assert once, computed                                            # no video computed twice
    assert sum(s["ok"] for s in sums) == len(computed) and all(s["failed"] == 0 for s in sums)
    assert sum(s["ok"] + s["skipped"] + s["elsewhere"] for s in sums) == 2 * sums[0]["videos"]
    assert not lost, lost                                            # the same arrays as one process's
    assert not list((work / "claims" / "extract").glob("*.claim"))  # every claim given back


def test_two_teaches_at_once_ask_each_video_once(reference, tmp_path, ledger):
    work = copy_workspace(reference, tmp_path / "work", drop=("teacher", "runs", "status/teach.jsonl"))
    args = command("teach", "--work", str(work))
    results = [finish(p) for p in [start(args), start(args)]]
    codes = [code for code, _, _ in results]
    lines = (work / "teacher" / "behaviour.jsonl").read_text().splitlines()
    asked = [json.loads(x)["video_id"] for x in lines]
    expected, got = verdicts(reference, "behaviour"), verdicts(work, "behaviour")
    lost = sorted(v for v in expected if got.get(v) != expected[v])
    once = len(asked) == len(set(asked)) == len(expected)
    ledger.fault(survived=codes == [0, 0] and once and not lost, mid_work=False, lost=len(lost))
    assert codes == [0, 0], [err[-2000:] for _, _, err in results]
    assert once, sorted(asked)
    assert not lost, lost
    asked_by = [int(re.search(r"asked (\d+)", out).group(1)) for _, out, _ in results]
    assert sum(asked_by) == len(expected), asked_by


def test_one_of_two_extracts_killed_its_video_is_taken_over(base_workspace, reference, tmp_path, ledger):
    """kill -9 of one process while both work: the survivor takes over the dead one's claim at once
    (same host, dead pid) and finishes every video."""
    work = copy_workspace(base_workspace, tmp_path / "work")
    args = command("extract", "--work", str(work), *EXTRACT)
    victim, survivor = start(args), start(args)
    mid_work = kill_after_extract_progress(victim, work, 4, lambda p: os.kill(p.pid, signal.SIGKILL))
    victim.communicate()
    code, out, err = finish(survivor)
    lost = store_differences(reference, work)
    ledger.fault(survived=code == 0 and not lost, mid_work=mid_work, lost=len(lost))
    assert code == 0, err[-2000:]
    assert not lost, lost
    assert sorted({r["video_id"] for r in status_lines(work, "extract") if r["status"] == "ok"}) == video_ids(work)


def test_a_second_train_of_a_running_run_is_refused(reference, train_config, tmp_path, ledger):
    work = copy_workspace(reference, tmp_path / "work", drop=("runs",))
    args = command("train", "--work", str(work), "--run", "r", "--config", str(train_config))
    first = start(args)
    claim = work / "claims" / "runs" / "r.claim"
    deadline = time.monotonic() + 300
    while not claim.exists() and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(first.pid, signal.SIGSTOP)     # paused, so that however slow this machine it is still training
    try:
        second = subprocess.run(args, env=ENV, capture_output=True, text=True, timeout=300)
    finally:
        os.kill(first.pid, signal.SIGCONT)
    code, _, err = finish(first)
    differences = metric_differences(reference / "runs" / "r", work / "runs" / "r", TRAIN_TOLERANCE)
    refused = second.returncode == 2 and f"run 'r' is being trained by pid {first.pid}" in second.stderr \
        and "Traceback" not in second.stderr
    ledger.fault(survived=refused and code == 0 and not differences, mid_work=False, lost=len(differences))
    assert refused, second.stderr[-2000:]
    assert code == 0, err[-2000:]
    assert not differences, differences
    assert not claim.exists()
