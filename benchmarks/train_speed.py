"""What `hiddenemo train` costs on this CPU, and where: the demo's training as the demo runs it, then
every fit timed one by one.

1. `hiddenemo train` on the workspace as `hiddenemo demo` runs it (its config, one worker process per
   core): wall seconds and CPU seconds (user + system, the command and its worker processes).
2. The same run with its fits one after the other in this process (`workers: 1`), each fit timed:
   per kind of fit (stage, modality, encoder) the fits, epochs, seconds a fit and an epoch (wall and
   CPU), and what the run spends outside its fits (folds, pooled statistics, selection, predictions).
3. With `--paired`, step 2 again with the per-video keypoint tables off (every draw checks its rows of
   the raw array, as training read keypoints before them): the CPU ratio per kind of fit, measured
   in one run, and whether both runs wrote the same bytes (they must).

The workspace must be a demo workspace (or any workspace the config trains on). Make one with
`hiddenemo demo --work W` (it trains too; this script then adds throwaway runs `bench-*`, deleted
at the end), or copy one. The machine should be otherwise idle: the load average is printed before
and after.

    python benchmarks/train_speed.py --work demo-work
    python benchmarks/train_speed.py --work demo-work --paired --config my.yaml --seed 1
"""
from __future__ import annotations

import argparse
import contextlib
import os
import resource
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

DEMO_CONFIG = Path(__file__).resolve().parents[1] / "src" / "hiddenemo" / "configs" / "demo.yaml"
SAME_BYTES = ("oof.csv", "selection.json", "metrics.json")


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)      # waited-for descendants: workers too
    return usage.ru_utime + usage.ru_stime


def train_command(work: Path, config: Path, seed: int) -> tuple[float, float]:
    """Wall and CPU seconds of `hiddenemo train` in a process of its own, with its default workers."""
    run = "bench-command"
    shutil.rmtree(work / "runs" / run, ignore_errors=True)
    cpu, start = children_cpu(), time.perf_counter()
    subprocess.run([sys.executable, "-m", "hiddenemo.cli", "train", "--work", str(work), "--config", str(config),
                    "--seed", str(seed), "--run", run], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    shutil.rmtree(work / "runs" / run)
    return wall, children_cpu() - cpu


def timed_fits(work: Path, config: Path, seed: int, run: str) -> tuple[list[dict], float, float]:
    """Train `run` with its fits one after the other in this process, each fit timed; returns the fits'
    (kind, epochs, wall, cpu) and the run's wall and CPU seconds."""
    from hiddenemo.train import stages
    from hiddenemo.train.config import load_train_config
    from hiddenemo.train.session import train_with

    fits, fit = [], stages.fit

    def timed(job):
        start, cpu = time.perf_counter(), time.process_time()
        state = fit(job)
        parts = job.tag.split("/")
        fits.append({"kind": "/".join(p for p in parts if not p.startswith("fold")), "epochs": job.epochs,
                     "wall": time.perf_counter() - start, "cpu": time.process_time() - cpu})
        return state

    shutil.rmtree(work / "runs" / run, ignore_errors=True)
    train_config = load_train_config([config], {"seed": seed, "workers": 1})
    stages.fit = timed
    start, cpu = time.perf_counter(), time.process_time()
    try:
        with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
            train_with(work, run, train_config)
    finally:
        stages.fit = fit
    return fits, time.perf_counter() - start, time.process_time() - cpu


def by_kind(fits: list[dict]) -> dict[str, dict]:
    kinds: dict[str, dict] = defaultdict(lambda: {"fits": 0, "epochs": 0, "wall": 0.0, "cpu": 0.0})
    for f in fits:
        k = kinds[f["kind"]]
        k["fits"] += 1
        k["epochs"] += f["epochs"]
        k["wall"] += f["wall"]
        k["cpu"] += f["cpu"]
    return dict(kinds)


def print_fits(fits: list[dict], wall: float, cpu: float, baseline: dict[str, dict] | None = None) -> None:
    kinds = by_kind(fits)
    width = max(map(len, kinds))
    extra = "   CPU vs step 2" if baseline else ""
    print(f"  {'fit':<{width}}  fits  epochs/fit   s/fit  CPU s/fit  CPU s/epoch{extra}")
    for name, k in kinds.items():
        ratio = f"   {k['cpu'] / baseline[name]['cpu']:.2f}x" if baseline and name in baseline else ""
        print(f"  {name:<{width}}  {k['fits']:4d}  {k['epochs'] / k['fits']:10.0f}  {k['wall'] / k['fits']:6.2f}  "
              f"{k['cpu'] / k['fits']:9.2f}  {k['cpu'] / k['epochs']:11.3f}{ratio}")
    fit_wall, fit_cpu = sum(f["wall"] for f in fits), sum(f["cpu"] for f in fits)
    print(f"  {len(fits)} fits: {fit_wall:.1f} s wall, {fit_cpu:.1f} s CPU ({fit_cpu / len(fits):.2f} s CPU a fit); "
          f"outside the fits: {wall - fit_wall:.1f} s wall, {cpu - fit_cpu:.1f} s CPU; "
          f"run total {wall:.1f} s wall, {cpu:.1f} s CPU")


def main() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from extract_speed import cpu_model

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, required=True, help="a demo workspace (`hiddenemo demo --work W`)")
    parser.add_argument("--config", type=Path, default=DEMO_CONFIG, help="training config (default: the demo's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--paired", action="store_true",
                        help="also train with the keypoint tables off, and print the ratio per kind of fit")
    args = parser.parse_args()
    if not (args.work / "dataset.json").exists():
        sys.exit(f"{args.work} is not a workspace; make one with `hiddenemo demo --work {args.work}`")

    print(f"CPU {cpu_model()}, {os.cpu_count()} cores; load average before: {os.getloadavg()}; "
          f"config {args.config}, seed {args.seed}", flush=True)
    wall, cpu = train_command(args.work, args.config, args.seed)
    print(f"1. `hiddenemo train` (default workers): {wall:.1f} s wall, {cpu:.1f} s CPU", flush=True)

    fits, fit_wall, fit_cpu = timed_fits(args.work, args.config, args.seed, "bench-fits")
    print("2. one fit after the other in this process:")
    print_fits(fits, fit_wall, fit_cpu)
    runs = args.work / "runs"
    if args.paired:
        from hiddenemo.data import keypoints

        budget, keypoints.KEYPOINTS_CACHE_BYTES = keypoints.KEYPOINTS_CACHE_BYTES, 0
        keypoints._checked_files.clear()
        try:
            off, off_wall, off_cpu = timed_fits(args.work, args.config, args.seed, "bench-tables-off")
        finally:
            keypoints.KEYPOINTS_CACHE_BYTES = budget
        print("3. the same with the keypoint tables off (every draw checks its rows of the raw array):")
        print_fits(off, off_wall, off_cpu, by_kind(fits))
        same = all((runs / "bench-fits" / f).read_bytes() == (runs / "bench-tables-off" / f).read_bytes()
                   for f in SAME_BYTES)
        print(f"  the run's CPU with the tables off: {off_cpu / fit_cpu:.2f}x; the same {', '.join(SAME_BYTES)} "
              f"with them on and off: {same}")
        shutil.rmtree(runs / "bench-tables-off")
    shutil.rmtree(runs / "bench-fits")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
