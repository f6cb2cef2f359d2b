"""Wall time of OpenPose JSON ingestion against a plain `json.load` loop over the same files.

    .venv/bin/python benchmarks/openpose_ingest.py [--folder DIR] [--repeats 3]

Without --folder it unpacks ../shared/data/imigue/openpose_json_video298.tar.xz (21,068 frames) into
a temporary directory (and says so and exits when that file is absent). Both contenders run on a
warm page cache (one untimed read first), alternately, and the median of the repeats is printed:
wall time, and CPU time (this process plus its worker processes), which a busy machine disturbs
less than wall time.
"Ours" is the whole `ingest_openpose`: parse, choose the person, normalise to the box, write
pose.npy and box.npy atomically. The machine is shared, so figures are noisy: compare medians.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ARCHIVE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "imigue" / "openpose_json_video298.tar.xz"


def plain_loop(files: list[Path]) -> None:
    for path in files:
        with open(path) as f:
            json.load(f)


def _cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, help="a folder of *_keypoints.json (default: video 298)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from hiddenemo.data.openpose import frame_files, ingest_openpose
    from hiddenemo.data.store import Store

    with tempfile.TemporaryDirectory() as tmp:
        folder = args.folder
        if folder is None:
            if not ARCHIVE.exists():
                print(f"skipped: {ARCHIVE} not found (only on the team's machines)")
                return 0
            subprocess.run(["tar", "-xJf", str(ARCHIVE), "-C", tmp], check=True)
            folder = Path(tmp) / "298"
        files = sorted(frame_files(folder).values())
        plain_loop(files)                                       # warm the page cache for both
        contenders = {
            "plain json.load loop": lambda: plain_loop(files),
            "ingest_openpose, 1 process": lambda: ingest_openpose(Store(tmp), "bench", folder, workers=1),
            "ingest_openpose, default": lambda: ingest_openpose(Store(tmp), "bench", folder),
        }
        wall: dict[str, list[float]] = {name: [] for name in contenders}
        cpu: dict[str, list[float]] = {name: [] for name in contenders}
        for _ in range(args.repeats):
            for name, run in contenders.items():
                cpu0, start = _cpu_seconds(), time.perf_counter()
                run()
                wall[name].append(time.perf_counter() - start)
                cpu[name].append(_cpu_seconds() - cpu0)
        base = statistics.median(wall["plain json.load loop"])
        print(f"{len(files)} files in {folder}, {os.cpu_count()} CPUs, median of {args.repeats}"
              f" (load average {os.getloadavg()[0]:.1f}: other work shares the machine)")
        for name in contenders:
            med = statistics.median(wall[name])
            print(f"  {name:28s} wall {med:6.2f} s ({len(files) / med:6.0f} files/s, {med / base:4.2f}x plain),"
                  f" CPU {statistics.median(cpu[name]):6.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
