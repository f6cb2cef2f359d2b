"""Time `hiddenemo apply` twice on the same videos with a fresh cache: the first run extracts, asks
the teacher and embeds; the second should read everything from the cache. Prints both wall times,
whether the probabilities agree, and the CPU model.

    python benchmarks/apply_cache.py MODEL_DIR VIDEOS [apply options...]
    e.g. python benchmarks/apply_cache.py demo-work/model new_videos/ --keypoints mediapipe --without '[events]'
"""
from __future__ import annotations

import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd


def cpu_model() -> str:
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main(model: str, videos: str, *options: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tables, seconds = [], []
        for attempt in (1, 2):
            out = Path(tmp) / f"apply{attempt}.csv"
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "hiddenemo.cli", "apply", "--model", model, "--videos", videos,
                            "--out", str(out), "--cache", str(Path(tmp) / "cache"), *options], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            seconds.append(time.perf_counter() - start)
            tables.append(pd.read_csv(out))
    same = tables[0].equals(tables[1])
    print(f"apply on {len(tables[0])} videos: first {seconds[0]:.1f} s, second (cache) {seconds[1]:.1f} s; "
          f"identical outputs: {same}; CPU: {cpu_model()} ({platform.machine()})")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    main(*sys.argv[1:])
