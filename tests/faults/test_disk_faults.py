"""A full disk (OSError ENOSPC at the write) and a read-only output (EROFS at the temporary file:
the tests run as any user, and root ignores chmod) give one clear error naming the file, no
traceback, and leave every earlier output byte for byte as it was."""
from __future__ import annotations

import builtins
import contextlib
import errno
import os
from unittest import mock

import pytest
from faults.campaign import copy_workspace
from faults.conftest import EXTRACT

import hiddenemo.data.store as store_module
from hiddenemo.cli import main


def snapshot(work) -> dict[str, bytes]:
    """File contents (appended logs may grow: their earlier lines must stay, checked as a prefix)."""
    return {str(p.relative_to(work)): p.read_bytes() for p in sorted(work.rglob("*")) if p.is_file()}


def kept(before: bytes, after: bytes | None, name: str) -> bool:
    if after is None:
        return False
    return after.startswith(before) if name.endswith(".jsonl") else after == before


def full_disk(*_args, **_kw):
    raise OSError(errno.ENOSPC, "No space left on device")


def read_only(*_args, **_kw):
    raise OSError(errno.EROFS, "Read-only file system")


REAL_OPEN = builtins.open


def open_read_only(file, mode="r", *args, **kw):
    """`open` on a read-only filesystem: reading works, any write mode fails as the kernel would."""
    if any(m in mode for m in "wax+"):
        raise OSError(errno.EROFS, "Read-only file system", str(file))
    return REAL_OPEN(file, mode, *args, **kw)


FAULTS = {"full disk": [(os, "fsync", full_disk)],
          "read-only": [(store_module.tempfile, "mkstemp", read_only), (builtins, "open", open_read_only)]}


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("stage", ["extract", "teach", "train", "dataset"])
def test_disk_fault_is_a_clear_error_and_keeps_earlier_outputs(fault, stage, reference, synthetic_dataset,
                                                               train_config, tmp_path, capsys, ledger):
    work = copy_workspace(reference, tmp_path / "work", drop=("teacher",) if stage == "teach" else ())
    for frames in (work / "store").glob("*/frames*"):
        if stage == "extract":
            frames.unlink()                                # so extraction has arrays to write
    args = {"extract": ["extract", "--work", str(work), *EXTRACT],
            "teach": ["teach", "--work", str(work)],
            "train": ["train", "--work", str(work), "--run", "new", "--config", str(train_config)],
            "dataset": ["dataset", "imigue", "--labels", str(synthetic_dataset / "labels_20200831.csv"),
                        "--splits", str(synthetic_dataset / "splits.csv"), "--out", str(work),
                        "--events_rate", "4"]}[stage]     # a new rate: every events array is rewritten
    before = snapshot(work)
    with contextlib.ExitStack() as stack:
        for module, name, raiser in FAULTS[fault]:
            stack.enter_context(mock.patch.object(module, name, raiser))
        code = main(args)
    err = capsys.readouterr().err
    after = snapshot(work)
    changed = sorted(k for k in before if not kept(before[k], after.get(k), k))
    clean = code == 2 and "Traceback" not in err and "hiddenemo: error: cannot write" in err and str(work) in err
    ledger.fault(survived=clean and not changed, mid_work=False, lost=len(changed))
    assert clean, err[-2000:]
    assert not changed, changed
    assert not [k for k in after if k.endswith(".tmp")]
