"""Kill -9 a `hiddenemo` subprocess at seeded random points, resume it, and check what it left.

Shared by tests/faults/test_kill_resume.py (a few kills, CI) and benchmarks/faults.py (a longer
campaign). A kill point is "after the stage's progress counter has grown by k (seeded, 0..max_k),
plus a seeded delay": progress-gated, so kills land mid-work however loaded the machine is.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
       "HIDDENEMO_LOG": "WARNING", "TQDM_DISABLE": "1"}


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "hiddenemo.cli", *args]


def run_to_end(args: list[str], timeout: float = 600) -> subprocess.CompletedProcess:
    done = subprocess.run(args, env=ENV, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{args} failed:\n{done.stderr[-3000:]}"
    return done


# ---- progress counters (monotone while a stage runs) ----------------------------------------------
def lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def extract_progress(work: Path) -> int:
    """Status lines plus arrays written (each video writes several, so kills land between them)."""
    return lines(work / "status" / "extract.jsonl") + sum(1 for _ in (work / "store").rglob("frames*.json"))


def kill_after_extract_progress(process, work: Path, n: int, kill) -> bool:
    """Wait until `work` shows `n` extract steps (or the process ends, or 10 min pass), then `kill`
    the still-running process; True when the kill landed mid-work."""
    deadline = time.monotonic() + 600
    while extract_progress(work) < n and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    mid_work = process.poll() is None
    if mid_work:
        kill(process)
    return mid_work


def teach_progress(work: Path, teacher_id: str = "behaviour") -> int:
    return lines(work / "teacher" / f"{teacher_id}.jsonl")


def train_progress(work: Path, run: str) -> int:
    """Epochs finished over all fits of the run (state.json is written last at each epoch end)."""
    total = 0
    for state in (work / "runs" / run).rglob("state.json"):
        try:
            total += json.loads(state.read_text())["epochs_done"]
        except (ValueError, OSError):
            pass
    return total


@dataclass
class KillResult:
    injected: int = 0          # kills delivered to a running process
    mid_work: int = 0          # ... after it had written something and before it finished
    finished_early: int = 0    # the process ended before its kill point
    checks: list[str] = field(default_factory=list)


def kill_and_resume(args: list[str], progress, rng: np.random.Generator, kills: int, max_k: int = 3,
                    max_delay: float = 0.4, check=None, timeout: float = 300) -> KillResult:
    """Start `args`, kill -9 it at a random point, run `check()` on what it left; `kills` times. The
    caller then runs the command to the end (the resume) and compares outputs."""
    result = KillResult()
    for _ in range(kills):
        start = progress()
        target, delay = start + int(rng.integers(0, max_k + 1)), float(rng.uniform(0, max_delay))
        proc = subprocess.Popen(args, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while proc.poll() is None and progress() < target and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(delay)
        if proc.poll() is not None:
            result.finished_early += 1
            break                              # nothing left to interrupt
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        result.injected += 1
        result.mid_work += progress() > start
        if check is not None:
            check()
    return result


# ---- what a killed run may leave ----------------------------------------------------------------------
def check_store(work: Path) -> None:
    """Every array a sidecar vouches for loads whole with the sidecar's shape and dtype (a partial
    array is never what a resumed stage would read as complete); temporary files are never .npy."""
    from hiddenemo.data.store import Store

    store = Store(work)
    for meta_path in (work / "store").rglob("*.json"):
        video_id, name = meta_path.parent.name, meta_path.stem
        meta = json.loads(meta_path.read_text())               # a sidecar is whole or absent
        if store.path(video_id, name).exists():
            array = np.load(store.path(video_id, name), allow_pickle=False)
            assert list(array.shape) == meta["shape"] and str(array.dtype) == meta["dtype"], meta_path


def check_jsonl(path: Path) -> None:
    """Every line but possibly a torn last one parses (readers skip only that one)."""
    if path.exists():
        rows = path.read_text().splitlines()
        for row in rows[:-1]:
            json.loads(row)


def check_run(run_dir: Path) -> None:
    """Every checkpoint and state file a killed training left loads; a state names complete weights."""
    from safetensors.torch import load_file

    for weights in run_dir.rglob("*.safetensors"):
        load_file(str(weights))
    for state_path in run_dir.rglob("state.json"):
        state = json.loads(state_path.read_text())
        done = state["epochs_done"]
        fold_pruned = (state_path.parent / "done.json").exists()
        assert fold_pruned or (state_path.parent / f"epoch-{done}.safetensors").exists(), state_path
    for name in ("selection.json", "metrics.json"):
        if (run_dir / name).exists():
            json.loads((run_dir / name).read_text())


def copy_workspace(src: Path, dst: Path, drop: tuple[str, ...] = ()) -> Path:
    shutil.copytree(src, dst)
    for rel in drop:
        target = dst / rel
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink(missing_ok=True)
    return dst


# ---- comparing finished outputs -------------------------------------------------------------------------
def store_differences(a: Path, b: Path) -> list[str]:
    """Arrays that differ byte for byte (or exist on one side only) between two workspaces."""
    files_a = {p.relative_to(a) for p in (a / "store").rglob("*.npy")}
    files_b = {p.relative_to(b) for p in (b / "store").rglob("*.npy")}
    out = [f"only in one: {sorted(map(str, files_a ^ files_b))[:5]}"] if files_a != files_b else []
    out += [str(f) for f in sorted(files_a & files_b) if (a / f).read_bytes() != (b / f).read_bytes()]
    return out


TIMING_FIELDS = ("created", "seconds")


def verdicts(work: Path, teacher_id: str) -> dict[str, str]:
    """The latest ok verdict per video as JSON, without its timing fields (the rest must be identical)."""
    from hiddenemo.teacher.store import read_verdicts

    return {vid: v.model_dump_json(exclude=set(TIMING_FIELDS)) for vid, v in read_verdicts(work, teacher_id).items()}


def metric_differences(a: Path, b: Path, tolerance: float) -> list[str]:
    """Cross-validated metrics and test predictions that differ by more than `tolerance`."""
    import pandas as pd

    out = []
    ma, mb = (json.loads((d / "metrics.json").read_text())["cross_validated"] for d in (a, b))
    for key in ma:
        for metric, value in ma[key].items():
            other = mb.get(key, {}).get(metric)
            if isinstance(value, float) and not (other is not None and abs(value - other) <= tolerance):
                out.append(f"{key}/{metric}: {value} vs {other}")
    pa, pb = (pd.read_csv(d / "predictions.csv", dtype={"video_id": str}) for d in (a, b))
    if list(pa["video_id"]) != list(pb["video_id"]) or list(pa["predicted_class"]) != list(pb["predicted_class"]):
        out.append("predictions.csv: different videos or labels")
    elif np.abs(pa["p_positive"].to_numpy() - pb["p_positive"].to_numpy()).max() > tolerance:
        out.append("predictions.csv: p_positive beyond tolerance")
    sa, sb = (json.loads((d / "selection.json").read_text()) for d in (a, b))
    epochs = [{k: v.get("epochs") for k, v in s.items() if isinstance(v, dict)} for s in (sa, sb)]   # not `transductive`
    if epochs[0] != epochs[1]:
        out.append("selection.json: different epochs chosen")
    return out
