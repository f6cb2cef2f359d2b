"""Video decoding with PyAV (it bundles FFmpeg): frames streamed one at a time as upright RGB arrays.

Every decoded frame counts, in decode order, so frame numbers agree with the OpenPose JSON that
dataset tools write (one file per decoded frame) also for variable-frame-rate files. The frame rate
reported is the mean over the decoded timestamps, which is the honest figure for such files.
"""
from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from hiddenemo.errors import UserError


class VideoError(UserError):
    """A video that cannot be used: empty, unreadable, without a video stream or without frames."""


@dataclass
class VideoInfo:
    path: str
    width: int           # upright, after rotation
    height: int
    fps: float           # from the container header; `Decoded.fps` is the measured one
    n_frames_hint: int   # the container's count, 0 if unknown (exact count comes from decoding)
    rotation: int        # degrees counterclockwise the stored frames must turn to be upright


@dataclass
class Decoded:
    """What a full pass over the frames found: the exact count and the mean frame rate."""
    n_frames: int = 0
    fps: float = 0.0


def _open(path: str | Path):
    import av

    path = Path(path)
    if not path.exists():
        raise VideoError(f"{path}: file not found; fix the path in the manifest")
    if path.stat().st_size == 0:
        raise VideoError(f"{path}: file is empty (0 bytes); re-copy or re-encode it")
    try:
        container = av.open(str(path))
    except av.error.FFmpegError as e:
        raise VideoError(f"{path}: not a readable video ({e.strerror or e}); re-encode it, e.g. "
                         "`ffmpeg -i in -c:v libx264 out.mp4`") from e
    if not container.streams.video:
        kinds = sorted({s.type for s in container.streams}) or ["none"]
        container.close()
        raise VideoError(f"{path}: has no video stream (streams: {', '.join(kinds)}); "
                         "an audio-only file cannot be extracted")
    return container


def probe(path: str | Path) -> VideoInfo:
    """Read the header only: size, rotation, the container's rate and frame count."""
    container = _open(path)
    try:
        stream = container.streams.video[0]
        rotation = _stream_rotation(stream)
        w, h = stream.codec_context.width, stream.codec_context.height
        if rotation % 180:
            w, h = h, w
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        return VideoInfo(str(path), int(w), int(h), float(rate) if rate else 0.0, int(stream.frames or 0),
                         rotation)
    finally:
        container.close()


def frames(path: str | Path, decoded: Decoded | None = None, step: int = 1, start: int = 0,
           stop: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (frame number, upright (H, W, 3) uint8 RGB array) for every `step`-th frame from `start`
    up to `stop` (None: the end), streaming.

    Frames in between and before `start` are decoded (codecs need them, and frame numbers count in
    decode order, so no seeking) but not converted to RGB, which is most of the cost. When the
    generator runs to the end of the file, `decoded` (if given) holds the exact count and mean rate.
    A file that breaks off mid-way yields the frames before the damage; one that yields none raises."""
    import av

    decoded = decoded if decoded is not None else Decoded()
    container = _open(path)
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"   # frame threading: decoding is a small share next to the models
        header_rate = stream.average_rate or stream.guessed_rate
        first_t = last_t = None
        n = 0
        try:
            for frame in container.decode(stream):
                if stop is not None and n >= stop:
                    return                  # a part of the video: its count and rate are not known
                if frame.time is not None:
                    first_t = frame.time if first_t is None else first_t
                    last_t = frame.time
                n += 1
                if n - 1 >= start and (n - 1) % step == 0:
                    yield n - 1, upright(frame)
        except av.error.FFmpegError as e:
            if n == 0:
                raise VideoError(f"{path}: no frame could be decoded ({e.strerror or e}); "
                                 "the file is damaged, re-encode or drop it") from e
            # A truncated file: keep what decoded; the frame count says how far it got.
        if n == 0:
            raise VideoError(f"{path}: the video stream has no frames; re-encode or drop the file")
        decoded.n_frames = n
        header = float(header_rate) if header_rate else 0.0
        if first_t is not None and last_t is not None and last_t > first_t and n > 1:
            measured = (n - 1) / (last_t - first_t)
            # A constant-rate video keeps the header's exact rate: the measured one carries float
            # noise (24.999999999999996) that int(fps * seconds) windows and cache keys would see,
            # and `dataset` probes the header's. A variable-rate one gets its mean measured rate.
            decoded.fps = header if abs(measured - header) <= 1e-3 * header else measured
        else:
            decoded.fps = header
    finally:
        container.close()


def prefetch(items: Iterator, depth: int = 8) -> Iterator:
    """Run an iterator in a background thread, `depth` items ahead: decoding (FFmpeg releases the
    GIL) then overlaps the models. Errors are raised in the consumer; leaving early stops the thread."""
    buffer: queue.Queue = queue.Queue(depth)
    stop = threading.Event()
    done = object()

    def produce():
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        buffer.put((item, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    break
        except BaseException as e:  # noqa: BLE001 - handed over to the consumer
            buffer.put((done, e))
            return
        finally:
            close = getattr(items, "close", None)
            if stop.is_set() and close:
                close()
        buffer.put((done, None))

    thread = threading.Thread(target=produce, name="decode", daemon=True)
    thread.start()
    try:
        while True:
            item, error = buffer.get()
            if error is not None:
                raise error
            if item is done:
                return
            yield item
    finally:
        stop.set()
        while thread.is_alive():       # unblock a producer waiting on a full buffer
            try:
                buffer.get_nowait()
            except queue.Empty:
                thread.join(0.05)


def upright(frame) -> np.ndarray:
    """A decoded PyAV frame as an RGB array turned by its display matrix, as players show it."""
    image = frame.to_ndarray(format="rgb24")
    turns = round((frame.rotation or 0) / 90) % 4
    return np.ascontiguousarray(np.rot90(image, k=turns)) if turns else image


def _stream_rotation(stream) -> int:
    """Rotation from the stream's display matrix (side data), which is what `frame.rotation` reports."""
    try:
        for frame in stream.container.decode(stream):
            return int(frame.rotation or 0)
    except Exception:  # noqa: BLE001 - a header probe must not fail on a damaged first packet
        return 0
    return 0
