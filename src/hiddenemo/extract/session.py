"""An extraction as `hiddenemo extract` runs it: every video of the workspace through the local or the Ray
engine, then what it saw — the summary, the keypoint coverage and every failed video — printed. The
command and the demo extract through `extract_workspace`."""
from __future__ import annotations

import json
from pathlib import Path

from hiddenemo.dist import load_ray_engine
from hiddenemo.dist.config import Engine, RayOptions, check_engine
from hiddenemo.errors import UserError
from hiddenemo.extract.config import ExtractConfig


def extract_workspace(work: Path, extract: ExtractConfig = ExtractConfig(), workers: int = 0,
                      videos: list[str | int] | None = None, engine: Engine = "local", address: str | None = None,
                      ray: RayOptions = RayOptions()) -> dict:
    """Extract every video of `work` (options as `hiddenemo extract`); prints what was done and returns
    the summary. Every video failing is an error; some failing is a dataset's normal state."""
    if workers < 0:
        raise UserError(f"--workers must be 0 (from the core count) or more, got {workers}")
    from hiddenemo.extract.runner import STATUS_FILE, extract_all

    check_engine(engine, address)
    if extract.frames == "dinov2-s":
        from hiddenemo.extract.embeddings import prepare_dinov2s

        prepare_dinov2s(extract.frames_precision)   # once, here, where its log line is seen (not in each worker)
    if engine == "ray":
        summary = load_ray_engine().extract_ray(work, extract, ray, address, videos)
    else:
        summary = extract_all(work, extract, workers, videos)
    failures = summary.pop("failures")
    print(json.dumps(summary))
    for line in coverage_lines(work, videos):
        print(line)
    for video_id, reason in failures.items():
        print(f"failed {video_id}: {reason}")
    if failures and len(failures) == summary["videos"]:
        # Some failures are a dataset's normal state (the others are done: exit 0); all failing is not.
        raise UserError(f"every video failed ({len(failures)}); nothing was extracted (status lines in "
                        f"{work / STATUS_FILE})")
    if failures:
        print(f"{len(failures)} video(s) failed; the others are done. Fix or drop those files and run the "
              f"same command again (status lines in {work / STATUS_FILE}).")
    return summary


def coverage_lines(work: Path, videos: list | None) -> list[str]:
    """What extraction saw, from each video's latest status line: the median share of frames with a
    person, a face and a hand, and every video with too little of a person or a face."""
    import pandas as pd

    from hiddenemo.data.keypoints import LOW_COVERAGE, low_coverage
    from hiddenemo.data.manifest import read_manifest, select_videos
    from hiddenemo.extract.runner import read_status
    from hiddenemo.words import count

    ids = set(select_videos(read_manifest(work), videos, work)["video_id"])
    latest = {r["video_id"]: r.get("coverage") for r in read_status(work) if r["video_id"] in ids}
    shares = {video_id: c for video_id, c in latest.items() if c}
    if not shares:
        return []
    median = pd.DataFrame.from_dict(shares, orient="index").median()
    lines = [f"coverage (share of frames, median of {count(len(shares), 'video')}): "
             + ", ".join(f"{part} {share:.0%}" for part, share in median.items())]
    low = {video_id: c for video_id, c in sorted(shares.items()) if low_coverage(c)}
    if low:
        lines.append(f"{count(len(low), 'video')} with a person or a face in under {LOW_COVERAGE:.0%} of the frames "
                     "(look with `hiddenemo extract --preview VIDEO --out check.png`):")
        lines += [f"  {video_id}: " + ", ".join(f"{part} {share:.0%}" for part, share in c.items())
                  for video_id, c in low.items()]
    return lines
