"""Overlay check: the stored box and 137-point skeleton drawn back onto the video's frames.

What is drawn is read back from `box.npy` and `pose.npy` (pose is stored normalised to the box, so
it is turned back into pixels here), so a good-looking preview checks the stored arrays themselves,
not an intermediate. Without a workspace the video is extracted into a temporary one first.
"""
from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from hiddenemo.data.store import Store
from hiddenemo.errors import UserError
from hiddenemo.extract import decode
from hiddenemo.extract.config import ExtractConfig
from hiddenemo.extract.skeleton import draw_skeleton


def to_pixels(pose: np.ndarray, box: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """pose (T, V, 3) normalised to box (T, 5) -> (xy (T, V, 2) pixels, conf (T, V))."""
    pose = np.asarray(pose, dtype=np.float32)
    box = np.asarray(box, dtype=np.float32)
    origin, size = box[:, None, 0:2], box[:, None, 2:4] - box[:, None, 0:2]
    return pose[..., :2] * size + origin, pose[..., 2]


def preview(video: Path, out: Path, config: ExtractConfig, work: Path | None = None,
            video_id: str | None = None, n_tiles: int = 4, max_frames: int = 0) -> Path:
    """Write `out` (.png: `n_tiles` frames spread over the video, tiled; .mp4: every frame, or the
    first `max_frames`) with the box and skeleton of `video_id` in `work`, extracting first if needed."""
    out = Path(out)
    if out.suffix.lower() not in (".png", ".jpg", ".mp4"):
        raise UserError(f"--out {out}: give a .png, .jpg or .mp4 file")
    if work is not None and video_id is not None and Store(work).has(video_id, "pose"):
        return _draw(video, out, Store(work), video_id, n_tiles, max_frames)
    from hiddenemo.extract.job import VideoJob

    with tempfile.TemporaryDirectory(prefix="hiddenemo-preview-") as tmp:
        keypoints = config.keypoints if config.keypoints != "none" else "mediapipe"
        job = VideoJob(tmp, replace(config, frames="none", keypoints=keypoints))
        status = job.run("preview", video)
        if status["status"] == "failed":
            raise UserError(f"preview of {video} failed: {status['reason']}")
        return _draw(video, out, Store(tmp), "preview", n_tiles, max_frames)


def _draw(video: Path, out: Path, store: Store, video_id: str, n_tiles: int, max_frames: int) -> Path:
    box = store.load(video_id, "box", mmap=False)
    xy, conf = to_pixels(store.load(video_id, "pose", mmap=False), box)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".mp4":
        return _write_mp4(video, out, box, xy, conf, max_frames or len(box))
    picks = set(np.linspace(0, len(box) - 1, n_tiles).round().astype(int).tolist())
    tiles = [draw_skeleton(rgb, xy[t], conf[t], box[t]) for t, rgb in decode.frames(video)
             if t in picks and t < len(box)]
    _write_image(out, _tile(tiles))
    return out


def _tile(images: list[np.ndarray], columns: int = 2) -> np.ndarray:
    h, w = images[0].shape[:2]
    columns = min(columns, len(images))
    rows = -(-len(images) // columns)
    grid = np.zeros((rows * h, columns * w, 3), dtype=np.uint8)
    for i, img in enumerate(images):
        r, c = divmod(i, columns)
        grid[r * h:(r + 1) * h, c * w:(c + 1) * w] = img[:h, :w]
    return grid


def _write_image(path: Path, rgb: np.ndarray) -> None:
    import cv2

    from hiddenemo.data.store import atomic_write_bytes

    ok, data = cv2.imencode(path.suffix.lower(), np.ascontiguousarray(rgb[..., ::-1]))
    if not ok:
        raise UserError(f"could not encode {path}")
    atomic_write_bytes(path, data.tobytes())


def _write_mp4(video: Path, out: Path, box, xy, conf, n: int) -> Path:
    import av

    info = decode.probe(video)
    rate = round(info.fps) or 25
    tmp = out.with_name(out.name + ".tmp.mp4")
    with av.open(str(tmp), "w") as container:
        stream = container.add_stream("mpeg4", rate=rate)
        stream.width, stream.height, stream.pix_fmt = info.width // 2 * 2, info.height // 2 * 2, "yuv420p"
        stream.bit_rate = 4_000_000
        for t, rgb in decode.frames(video):
            if t >= min(n, len(box)):
                break
            img = draw_skeleton(rgb, xy[t], conf[t], box[t])[:stream.height, :stream.width]
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    tmp.replace(out)
    return out
