"""The feature store: atomic writes, stale-version detection, memory-mapped reads."""
from __future__ import annotations

import os

import numpy as np
import pytest

from hiddenemo.data import store as store_mod
from hiddenemo.data.store import (FILE_MODE, Store, StoreError, _read_umask, atomic_save_npy, atomic_write_text,
                                  check_video_id)


def test_save_load_roundtrip_is_memory_mapped(work):
    store = Store(work)
    arr = np.arange(24, dtype=np.float16).reshape(2, 3, 4)
    store.save("v1", "pose", arr, "producer", "1", {"a": 1})
    back = store.load("v1", "pose")
    assert isinstance(back, np.memmap)
    np.testing.assert_array_equal(back, arr)
    assert store.meta("v1", "pose") == {"producer": "producer", "version": "1", "params": {"a": 1},
                                        "shape": [2, 3, 4], "dtype": "float16"}


def test_stale_version_producer_params_are_detected(work):
    store = Store(work)
    store.save("v1", "pose", np.zeros((3, 2)), "mediapipe", "2", {"size": 640})
    assert store.is_current("v1", "pose", "mediapipe", "2")
    assert store.is_current("v1", "pose", "mediapipe", "2", {"size": 640})
    assert not store.is_current("v1", "pose", "mediapipe", "3")
    assert not store.is_current("v1", "pose", "openpose-json", "2")
    assert not store.is_current("v1", "pose", "mediapipe", "2", {"size": 320})
    assert not store.is_current("v2", "pose", "mediapipe", "2")


def test_array_replaced_behind_the_sidecar_is_not_current(work):
    store = Store(work)
    store.save("v1", "box", np.zeros((3, 5), np.float32), "p", "1")
    np.save(store.path("v1", "box"), np.zeros((4, 5), np.float32))   # someone overwrote the array
    assert not store.is_current("v1", "box", "p", "1")


def test_crash_in_os_replace_keeps_old_array_and_leaves_no_partial_file(work, monkeypatch):
    store = Store(work)
    old = np.ones((5, 2), np.float32)
    store.save("v1", "pose", old, "p", "1")

    def crash(*args, **kwargs):
        raise OSError("disk vanished")
    monkeypatch.setattr(store_mod.os, "replace", crash)
    with pytest.raises(OSError, match="disk vanished"):
        atomic_save_npy(store.path("v1", "pose"), np.zeros((7, 2), np.float32))
    monkeypatch.undo()
    np.testing.assert_array_equal(store.load("v1", "pose", mmap=False), old)
    assert sorted(os.listdir(store.video_dir("v1"))) == ["pose.json", "pose.npy"]


def test_crash_mid_write_leaves_no_array_that_looks_current(work, monkeypatch):
    store = Store(work)
    store.save("v1", "pose", np.ones((5, 2), np.float32), "p", "1")
    real_save = np.save

    def half_then_crash(f, arr, **kwargs):
        real_save(f, arr[: len(arr) // 2], **kwargs)    # some bytes reach the temporary file
        raise KeyboardInterrupt                         # then the process is stopped
    monkeypatch.setattr(store_mod.np, "save", half_then_crash)
    with pytest.raises(KeyboardInterrupt):
        store.save("v1", "pose", np.zeros((8, 2), np.float32), "p", "2")
    monkeypatch.undo()
    assert sorted(os.listdir(store.video_dir("v1"))) == ["pose.npy"]     # no .tmp left behind
    np.testing.assert_array_equal(store.load("v1", "pose", mmap=False), np.ones((5, 2)))
    # The old sidecar went first, so neither version claims the array: the stage reruns.
    assert not store.has("v1", "pose")
    assert not store.is_current("v1", "pose", "p", "1")
    assert not store.is_current("v1", "pose", "p", "2")


def test_load_missing_and_unreadable_name_the_video(work):
    store = Store(work)
    with pytest.raises(StoreError, match="video v9: no pose array"):
        store.load("v9", "pose")
    assert store.load_if("v9", "pose") is None
    store.path("v9", "pose").parent.mkdir(parents=True)
    store.path("v9", "pose").write_bytes(b"not numpy")
    with pytest.raises(StoreError, match="unreadable"):
        store.load("v9", "pose")


@pytest.mark.parametrize("bad", ["../x", "..", "", "a/b", ".hidden", "a b"])
def test_unsafe_video_ids_are_refused(bad):
    with pytest.raises(ValueError):
        check_video_id(bad)
    assert check_video_id("clip_01-a.b") == "clip_01-a.b"


def test_outputs_get_the_usual_file_permissions(work):
    """Temporary files are owner-only; finished outputs are readable as any file written under the
    process's umask (a shared report or workspace must be readable by the team)."""
    path = Store(work).save("v1", "pose", np.zeros((2, 137, 3), np.float16), "test", "1")
    mode = path.stat().st_mode & 0o777
    assert mode == FILE_MODE and mode == 0o666 & ~_read_umask()
    atomic_write_text(work / "report.html", "<html></html>")
    assert (work / "report.html").stat().st_mode & 0o777 == FILE_MODE


def test_old_temporary_files_are_swept_and_recent_ones_kept(work):
    """A kill -9 mid-write leaves `<name>.npy.<random>.tmp`; an old one is swept (extract does it at
    its start), a recent one may be a write in progress elsewhere and stays."""
    store = Store(work)
    store.save("v1", "pose", np.zeros((2, 137, 3), np.float16), "test", "1")
    old, recent = work / "store" / "v1" / "pose.npy.abc.tmp", work / "store" / "v1" / "frames.npy.def.tmp"
    old.write_bytes(b"half"), recent.write_bytes(b"half")
    os.utime(old, (os.path.getmtime(old) - 7200,) * 2)
    assert store.sweep_temporary() == 1
    assert not old.exists() and recent.exists() and store.has("v1", "pose")
