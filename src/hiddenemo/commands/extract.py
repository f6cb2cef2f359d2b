"""`hiddenemo extract`: person boxes, keypoints and frame embeddings for every video."""
from __future__ import annotations

from pathlib import Path

from hiddenemo.dist.config import Engine, RayOptions
from hiddenemo.errors import UserError
from hiddenemo.extract.config import ExtractConfig


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

    from hiddenemo.extract.session import extract_workspace

    extract_workspace(Path(work), extract, workers, videos, engine, address, ray)
