"""`hiddenemo extract`: person boxes, keypoints and frame embeddings for every video."""
from __future__ import annotations

import json
import logging
from pathlib import Path

from hiddenemo.dist.config import Engine, RayOptions, check_engine, load_ray_engine
from hiddenemo.errors import UserError
from hiddenemo.extract.config import ExtractConfig

log = logging.getLogger(__name__)


def extract(work: Path | None = None, extract: ExtractConfig = ExtractConfig(), workers: int = 0,
            videos: list[str | int] | None = None, preview: Path | None = None, out: Path | None = None,
            engine: Engine = "local", address: str | None = None, ray: RayOptions = RayOptions()) -> None:
    """Turn every video of the manifest into box.npy, pose.npy, frames.npy and frames_idx.npy.

    Skips outputs that are current (same producer, version and options), so a re-run resumes; one
    status line per video goes to WORK/status/extract.jsonl. With --preview, draws the box and the
    137-point skeleton of one video instead.

    Args:
        work: The workspace directory made by `hiddenemo dataset`.
        extract: Which models and how often.
        workers: Videos extracted at once, each in its own process (the cores are shared out); 0:
            from the core count (one per core, or per two cores with MediaPipe keypoints and
            embeddings, which run side by side in a worker).
        videos: Only these video ids (default: the whole manifest).
        preview: A video file to draw; with --work and a stored video of the same id (file name
            without extension), the stored arrays are drawn, otherwise it is extracted first.
        out: Where the preview goes: .png (four frames, tiled) or .mp4 (every frame).
        engine: local (processes on this machine, --workers of them) or ray (a pool of Ray actors,
            --ray.actors of them; WORK and the videos must be on a filesystem every node sees).
        address: Ray cluster to join: auto (the one started with `ray start` here) or HOST:PORT;
            unset = start a local Ray instance.
        ray: Actors, resources per actor and retries of the Ray engine.
    """
    if preview is not None:
        from hiddenemo.extract.preview import preview as draw_preview

        if out is None:
            raise UserError("--preview needs --out preview.png or preview.mp4")
        if not Path(preview).is_file():
            raise UserError(f"--preview {preview}: no such video file; give the path of the video to draw")
        path = draw_preview(Path(preview), Path(out), extract, work=work, video_id=Path(preview).stem)
        print(f"preview written to {path}")
        return
    if work is None:
        raise UserError("give --work WORK (a workspace made by `hiddenemo dataset`), or --preview VIDEO")
    if workers < 0:
        raise UserError(f"--workers must be 0 (from the core count) or more, got {workers}")
    from hiddenemo.extract.runner import STATUS_FILE, extract_all

    check_engine(engine, address)
    if extract.frames == "dinov2-s":
        from hiddenemo.extract.embeddings import prepare_dinov2s

        prepare_dinov2s(extract.frames_precision)   # once, here, where its log line is seen (not in each worker)
    if engine == "ray":
        summary = load_ray_engine().extract_ray(Path(work), extract, ray, address, videos)
    else:
        summary = extract_all(Path(work), extract, workers, videos)
    failures = summary.pop("failures")
    print(json.dumps(summary))
    for line in coverage_lines(Path(work), videos):
        print(line)
    for video_id, reason in failures.items():
        print(f"failed {video_id}: {reason}")
    if failures and len(failures) == summary["videos"]:
        # Some failures are a dataset's normal state (the others are done: exit 0); all failing is not.
        raise UserError(f"every video failed ({len(failures)}); nothing was extracted (status lines in "
                        f"{Path(work) / STATUS_FILE})")
    if failures:
        print(f"{len(failures)} video(s) failed; the others are done. Fix or drop those files and run the "
              f"same command again (status lines in {Path(work) / STATUS_FILE}).")


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
