"""A longer randomised kill -9 / resume campaign over extract, teach and train; prints the summary.

    .venv/bin/python benchmarks/faults.py --kills 10 --seeds 0 1 2

For each seed: a tiny synthetic dataset, one uninterrupted reference run of every stage, then per
stage a fresh copy killed `--kills` times at seeded random points (progress-gated, see
tests/faults/campaign.py) and resumed; outputs compared with the reference (arrays and verdicts byte
for byte, training metrics within 1e-6). Wall times are noisy: the machine is shared.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# This file is itself called faults.py: put tests/ first in place of its own folder, so that
# `faults` is the tests package.
sys.path[0] = str(Path(__file__).resolve().parents[1] / "tests")

from faults.campaign import (check_jsonl, check_run, check_store, command, copy_workspace,  # noqa: E402
                             extract_progress, kill_and_resume, metric_differences, run_to_end,
                             store_differences, teach_progress, train_progress, verdicts)
from faults.conftest import EXTRACT, SYNTHETIC, TRAIN_YAML  # noqa: E402


def campaign(seed: int, kills: int, root: Path) -> list[dict]:
    from hiddenemo.commands.dataset import imigue
    from hiddenemo.synthetic import generate

    syn = root / "synthetic"
    generate(syn, **{**SYNTHETIC, "seed": seed})
    base = root / "base"
    with contextlib.redirect_stdout(io.StringIO()):
        imigue(syn / "labels_20200831.csv", syn / "splits.csv", base, videos=syn / "videos",
               openpose=syn / "openpose", workers=1)
    config = root / "tiny.yaml"
    config.write_text(TRAIN_YAML)
    ref = copy_workspace(base, root / "reference")
    t0 = time.perf_counter()
    run_to_end(command("extract", "--work", str(ref), *EXTRACT))
    run_to_end(command("teach", "--work", str(ref)))
    run_to_end(command("train", "--work", str(ref), "--run", "r", "--config", str(config)))
    print(f"seed {seed}: reference pipeline {time.perf_counter() - t0:.0f} s")
    rng = np.random.default_rng(seed)
    rows = []

    work = copy_workspace(base, root / "extract")
    args = command("extract", "--work", str(work), *EXTRACT)
    r = kill_and_resume(args, lambda: extract_progress(work), rng, kills, max_k=6, check=lambda: check_store(work))
    run_to_end(args)
    rows.append({"stage": "extract", "result": r, "lost": len(store_differences(ref, work))})

    work = copy_workspace(ref, root / "teach", drop=("teacher", "runs", "status/teach.jsonl"))
    args = command("teach", "--work", str(work))
    r = kill_and_resume(args, lambda: teach_progress(work), rng, kills, max_k=2, max_delay=0.0,
                        check=lambda: check_jsonl(work / "teacher" / "behaviour.jsonl"))
    run_to_end(args)
    expected, got = verdicts(ref, "behaviour"), verdicts(work, "behaviour")
    rows.append({"stage": "teach", "result": r, "lost": sum(got.get(v) != expected[v] for v in expected)})

    work = copy_workspace(ref, root / "train", drop=("runs",))
    args = command("train", "--work", str(work), "--run", "r", "--config", str(config))
    r = kill_and_resume(args, lambda: train_progress(work, "r"), rng, kills, max_k=4, max_delay=1.0,
                        check=lambda: check_run(work / "runs" / "r"))
    run_to_end(args)
    rows.append({"stage": "train", "result": r,
                 "lost": len(metric_differences(ref / "runs" / "r", work / "runs" / "r", 1e-6))})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=8, help="kills per stage and seed")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    opts = parser.parse_args()
    totals = {"injected": 0, "mid_work": 0, "lost": 0, "survived": 0}
    start = time.perf_counter()
    for seed in opts.seeds:
        with tempfile.TemporaryDirectory(prefix="hiddenemo-faults-") as tmp:
            for row in campaign(seed, opts.kills, Path(tmp)):
                r = row["result"]
                survived = r.injected if row["lost"] == 0 else 0
                print(f"  {row['stage']:8s} kills {r.injected:3d} (mid-work {r.mid_work}, process finished before "
                      f"the kill point {r.finished_early}), outputs differing after resume: {row['lost']}")
                totals["injected"] += r.injected
                totals["mid_work"] += r.mid_work
                totals["survived"] += survived
                totals["lost"] += row["lost"]
    print(f"faults injected: {totals['injected']}, survived: {totals['survived']} "
          f"({totals['mid_work']} landed mid-work); outputs lost: {totals['lost']}; "
          f"{time.perf_counter() - start:.0f} s wall (shared machine, noisy)")


if __name__ == "__main__":
    main()
