"""The feature store: `WORK/store/<video_id>/<name>.npy`, one array per modality and video.

Every array is written atomically (a `.tmp` file, then `os.replace`) and carries a sidecar
`<name>.json` naming the producer and version that made it, so a changed extractor invalidates
exactly its own outputs. Arrays are read back memory-mapped: drawing 800 of 20,000 rows reads only
those rows.
"""
from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from hiddenemo.data.claims import exclusive
from hiddenemo.data.ids import SAFE_NAME, check_video_id
from hiddenemo.errors import UserError

MODALITIES = ("pose", "frames", "text", "events")

def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# Read once, at import (setting it to read it is not thread-safe): temporary files are created
# owner-only, and a finished output gets the permissions any other file written here would.
FILE_MODE = 0o666 & ~_read_umask()


class StoreError(UserError, RuntimeError):
    """A store entry is missing, stale, unreadable or outside the workspace; the message says which
    and what to do."""


def array_name(modality: str, text_encoder: str | None = None, arrays: dict[str, str] | None = None) -> str:
    """The store array a modality reads: its own name, or `text.<encoder_id>` for the texts one
    encoder embedded (several encoders' texts can sit side by side); `arrays` are encoders' own
    (`frames-xclip` reads `frames_xclip`, `hiddenemo.models.registry.reads_array`)."""
    if arrays and arrays.get(modality):
        return arrays[modality]
    return f"text.{text_encoder}" if modality == "text" else modality


def run_dir(work: str | Path, run: str) -> Path:
    """`WORK/runs/<run>`, with a run name that cannot climb out of the workspace."""
    return Path(work) / "runs" / check_video_id(run, "run name")


def _atomic_write(path: Path, write) -> None:
    """Call `write(file)` on a temporary file beside `path`, then rename it over `path`: a crash
    leaves either the old file or the new one, never half. A full or read-only disk raises an
    OSError that names `path` (the bare one from `write` or `fsync` names no file)."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise _naming(e, path) from e
        raise


def _naming(error: OSError, path: Path) -> OSError:
    """The error itself when it names a file, else the same error naming `path`."""
    return error if error.filename is not None else OSError(error.errno, error.strerror or str(error), str(path))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that a crash leaves either the old file or the new one, never half."""
    _atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_save_npy(path: Path, array: np.ndarray) -> None:
    _atomic_write(path, lambda f: np.save(f, np.ascontiguousarray(array), allow_pickle=False))


def append_line(path: Path, line: str) -> None:
    """Append one line to a log (jsonl), flushed and fsynced. A torn last line (a crash or a full disk
    in mid-write) is closed with a newline first, so that it cannot swallow this line as well. Under
    the log's lock: several processes may append to one log, and NFS does not make appends atomic."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with exclusive(path), open(path, "a+b") as f:
            if f.seek(0, os.SEEK_END) > 0:
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":
                    f.write(b"\n")
            f.write(line.rstrip("\n").encode("utf-8") + b"\n")
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        raise _naming(e, path) from e


class Store:
    """Arrays of one workspace, addressed by (video_id, name); `name` is e.g. `pose` or `text.minilm`."""

    def __init__(self, work: str | Path):
        self.work = Path(work)
        self.root = self.work / "store"

    def video_dir(self, video_id: str) -> Path:
        directory = self.root / check_video_id(video_id)
        # A symlinked video folder must stay inside the store (the store itself may be a symlink).
        if directory.is_symlink() and not directory.resolve().is_relative_to(self.root.resolve()):
            raise StoreError(f"video {video_id}: {directory} is a symlink to {directory.resolve()}, outside "
                             f"the store {self.root}; remove the link (nothing is read or written through it)")
        return directory

    def path(self, video_id: str, name: str) -> Path:
        if not SAFE_NAME.match(name):
            raise ValueError(f"array name {name!r} is not a plain file name")
        return self.video_dir(video_id) / f"{name}.npy"

    def _meta_path(self, video_id: str, name: str) -> Path:
        return self.video_dir(video_id) / f"{name}.json"

    def save(self, video_id: str, name: str, array: np.ndarray, producer: str, version: str,
             params: dict | None = None) -> Path:
        """Drop the old sidecar, write the array, then its sidecar: a crash in between leaves an
        array without a sidecar, which `has` and `is_current` reject, never a sidecar that vouches
        for an array it did not describe."""
        path = self.path(video_id, name)
        self._meta_path(video_id, name).unlink(missing_ok=True)
        atomic_save_npy(path, array)
        meta = {"producer": producer, "version": str(version), "params": params or {},
                "shape": list(array.shape), "dtype": str(array.dtype)}
        atomic_write_text(self._meta_path(video_id, name), json.dumps(meta, sort_keys=True, default=str))
        return path

    def meta(self, video_id: str, name: str) -> dict | None:
        try:
            return json.loads(self._meta_path(video_id, name).read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def sweep_temporary(self, older_than_s: float = 3600.0) -> int:
        """Delete `*.tmp` files a killed writer left in the store (readers never look at them); only
        those older than `older_than_s`, so a write in progress elsewhere is never touched. Returns
        how many were removed."""
        cutoff = time.time() - older_than_s
        removed = 0
        for path in self.root.glob("*/*.tmp") if self.root.exists() else []:
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:
                continue                                      # another sweep got there first
        return removed

    def has(self, video_id: str, name: str) -> bool:
        return self.path(video_id, name).exists() and self.meta(video_id, name) is not None

    def is_current(self, video_id: str, name: str, producer: str, version: str,
                   params: dict | None = None) -> bool:
        """True when the stored array was made by this producer, version (and params, if given)."""
        meta = self.meta(video_id, name)
        if meta is None or not self.path(video_id, name).exists():
            return False
        if meta.get("producer") != producer or meta.get("version") != str(version):
            return False
        if params is not None and json.loads(json.dumps(params, sort_keys=True, default=str)) != meta.get("params"):
            return False
        return self._shape_matches(video_id, name, meta)

    def _shape_matches(self, video_id: str, name: str, meta: dict) -> bool:
        try:
            arr = np.load(self.path(video_id, name), mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError):
            return False
        return list(arr.shape) == meta.get("shape") and str(arr.dtype) == meta.get("dtype")

    def load(self, video_id: str, name: str, mmap: bool = True) -> np.ndarray:
        path = self.path(video_id, name)
        if not path.exists():
            raise StoreError(f"video {video_id}: no {name} array at {path}; run the stage that makes it "
                             "(`hiddenemo extract`, `teach`, `embed`) first")
        try:
            return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
        except (ValueError, OSError) as e:
            raise StoreError(f"video {video_id}: {path} is unreadable ({e}); delete it and re-run its stage") from e

    def load_if(self, video_id: str, name: str, mmap: bool = True) -> np.ndarray | None:
        """The array, or None when this video has none (a missing modality is masked, not fatal)."""
        return self.load(video_id, name, mmap) if self.has(video_id, name) else None
