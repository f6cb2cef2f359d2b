"""Claims: which process works on which video, so several processes can share one workspace.

`hiddenemo extract` (or `teach`, `embed`) started twice on one workspace, from two terminals or as two
cluster jobs, splits the videos: before a process works on a video it creates the claim file
`WORK/claims/<stage>/<video_id>.claim` holding its owner (host, pid, a random token) and keeps it
fresh (a heartbeat thread touches it every HEARTBEAT_S); the other process leaves that video alone
and, once the claim is gone, reads the outcome from the status log instead of computing it again.
A claim is stale, and taken over, when its owner is a dead process on this host, or when its
heartbeat is older than STALE_S (an owner on another host that died or lost the filesystem).

`exclusive(path)` is the same mechanism for a short critical section (a read-modify-write of the
manifest) and `hold_run` for a whole training run, which a second `train` of the same run refuses.

What the filesystem must give (local disks, NFSv3 and later, Lustre, GPFS, CephFS do): an atomic
exclusive create (`O_CREAT | O_EXCL`), an atomic rename, and modification times that follow the
clients' clocks within a few seconds (NTP). No `flock`/`fcntl` lock is used: NFS lacks them or
emulates them badly.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections import deque
from pathlib import Path
from typing import Callable, Iterable

from hiddenemo.data.ids import check_video_id
from hiddenemo.errors import UserError

log = logging.getLogger(__name__)

HEARTBEAT_S = 10.0
STALE_S = 60.0
POLL_S = 0.5


def _machine() -> str:
    """This host, and this pid namespace (two containers may share a host name but not their pids)."""
    try:
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        namespace = 0
    return f"{socket.gethostname()}/{namespace}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True                               # someone else's process: alive
    return True


class Claims:
    """The claims of one process on one stage's videos; use as a context manager (the heartbeat runs
    inside it, and every claim still held is released on the way out)."""

    def __init__(self, folder: str | Path, suffix: str = ".claim", heartbeat_s: float = HEARTBEAT_S,
                 stale_s: float = STALE_S):
        self.folder, self.suffix = Path(folder), suffix
        self.heartbeat_s, self.stale_s = heartbeat_s, stale_s
        self.owner = {"host": _machine(), "pid": os.getpid(), "token": uuid.uuid4().hex}
        self.held: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "Claims":
        self.folder.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._beat, name=f"claims-{self.folder.name}", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        for key in list(self.held):
            self.release(key)

    @classmethod
    def of_stage(cls, work: str | Path, stage: str, **kw) -> "Claims":
        """The claims on the videos of one stage (`extract`, `teach-<teacher id>`, `embed-<encoder>`)."""
        return cls(Path(work) / "claims" / check_video_id(stage, "stage"), **kw)

    def path(self, key: str) -> Path:
        return self.folder / f"{check_video_id(key)}{self.suffix}"

    # ---- taking and giving back ----------------------------------------------------------------------
    def claim(self, key: str) -> bool:
        """True when this process now holds `key`: it was free, stale (taken over) or already ours."""
        if key in self.held:
            return True
        path = self.path(key)
        if not _create(path, self.owner):
            holder = read_holder(path)
            if not self._stale(path, holder) or not _take_over(path, holder, self.owner, self._stale):
                return False
            log.warning("took over %s from %s (pid %s): its owner is gone", path, (holder or {}).get("host"),
                        (holder or {}).get("pid"))
        with self._lock:
            self.held.add(key)
        return True

    def release(self, key: str) -> None:
        with self._lock:
            self.held.discard(key)
        path = self.path(key)
        if _owned_by(path, self.owner):
            path.unlink(missing_ok=True)

    def holder(self, key: str) -> dict | None:
        """Who holds `key` now ({host, pid, token}) when someone live does, else None."""
        path = self.path(key)
        holder = read_holder(path)
        if holder is None and not path.exists():
            return None
        return None if self._stale(path, holder) else (holder or {})

    # ---- liveness ------------------------------------------------------------------------------------
    def _stale(self, path: Path, holder: dict | None) -> bool:
        try:
            age = time.time() - path.stat().st_mtime
        except FileNotFoundError:
            return True
        if holder is None:                      # created but not written yet, or torn by a crash
            return age > self.stale_s
        if holder.get("host") == self.owner["host"] and not _alive(int(holder.get("pid", 0))):
            return True
        return age > self.stale_s

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            with self._lock:
                keys = list(self.held)
            for key in keys:
                path = self.path(key)
                try:
                    if _owned_by(path, self.owner):
                        os.utime(path)
                        continue
                except OSError:
                    pass
                # Another process judged us gone (we were stalled longer than stale_s): it owns the video now.
                log.warning("lost the claim %s to another process; its result may be computed twice", path)
                with self._lock:
                    self.held.discard(key)


def read_holder(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _owned_by(path: Path, owner: dict) -> bool:
    holder = read_holder(path)
    return holder is not None and holder.get("token") == owner["token"]


def _create(path: Path, owner: dict) -> bool:
    """Create the claim file exclusively with `owner` in it; False when it exists. (No fsync: the
    exclusive create is what decides, and a reader takes a claim it cannot read yet as live.)"""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    except OSError as e:
        raise OSError(e.errno, e.strerror, str(path)) from e
    try:
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps({**owner, "since": time.time()}))
    except OSError as e:                                   # a full disk: no half-made claim stays behind
        path.unlink(missing_ok=True)
        raise OSError(e.errno, e.strerror, str(path)) from e
    return True


def _take_over(path: Path, holder: dict | None, owner: dict, stale) -> bool:
    """Replace a stale claim by ours. Two processes may judge it stale at once: a second, short-lived
    `<claim>.break` file lets one of them through; it checks again that the claim is the stale one it
    saw before removing it."""
    breaker = path.with_name(path.name + ".break")
    if not _create(breaker, owner):
        if time.time() - _mtime(breaker) > STALE_S:    # a breaker that died in these few lines
            breaker.unlink(missing_ok=True)
        return False
    try:
        now = read_holder(path)
        if (now or {}).get("token") != (holder or {}).get("token") or not stale(path, now):
            return False
        path.unlink(missing_ok=True)
        return _create(path, owner)
    finally:
        breaker.unlink(missing_ok=True)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return time.time()


def describe(holder: dict) -> str:
    since = holder.get("since")
    when = time.strftime(" since %H:%M:%S", time.localtime(since)) if since else ""
    return f"pid {holder.get('pid')} on {str(holder.get('host', '?')).split('/')[0]}{when}"


# ---- short critical sections and whole runs -------------------------------------------------------------
@contextlib.contextmanager
def exclusive(path: Path, timeout_s: float = 120.0):
    """Hold `<path>.lock` for a short read-modify-write of `path`; waits for another holder (taking
    over a stale one) up to `timeout_s`. No heartbeat: the section lasts milliseconds."""
    path = Path(path)
    claims = Claims(path.parent, suffix=".lock")
    deadline = time.monotonic() + timeout_s
    while not claims.claim(path.name):
        if time.monotonic() > deadline:
            raise UserError(f"{path} is locked by {describe(claims.holder(path.name) or {})} for over "
                            f"{timeout_s:.0f} s ({claims.path(path.name)}); if that process is gone, delete the lock")
        time.sleep(0.02)
    try:
        yield
    finally:
        claims.release(path.name)


@contextlib.contextmanager
def hold_run(work: str | Path, run: str):
    """Hold the run `run` of `work` for the whole of a training; a second holder is refused with who
    holds it. A run whose trainer was killed is taken over (and resumes)."""
    check_video_id(run, "run name")
    with Claims.of_stage(work, "runs") as claims:
        if not claims.claim(run):
            holder = claims.holder(run) or {}
            raise UserError(f"run {run!r} is being trained by {describe(holder)} ({claims.path(run)}): wait for it "
                            f"to finish, or train under another --run; if that process is gone, delete the file or "
                            f"wait {STALE_S:.0f} s and it is taken over")
        yield


# ---- a stage's videos, split between processes ----------------------------------------------------------
class SharedQueue:
    """(key, item) pairs to work on, split with other processes through `claims` (None: this process
    alone). `take()` gives the next pair this process now holds, or None when every pair left is held
    by another live process (look again after `wait()`); `done(key)` gives the claim back once the
    outcome is recorded; `put_back` queues a pair still held (a retry). A pair whose claim comes free
    and that `settled(key)` says another process finished is not taken: it lands in `elsewhere`."""

    def __init__(self, pairs: Iterable[tuple[str, object]], claims: Claims | None = None,
                 settled: Callable[[str], bool] | None = None):
        self.waiting, self.retry = deque(pairs), deque()
        self.claims, self.settled = claims, settled or (lambda key: False)
        self.elsewhere: list[str] = []

    def __bool__(self) -> bool:
        return bool(self.waiting or self.retry)

    def take(self) -> tuple[str, object] | None:
        if self.retry:
            return self.retry.popleft()
        for _ in range(len(self.waiting)):
            key, item = self.waiting.popleft()
            if self.claims is not None and not self.claims.claim(key):
                self.waiting.append((key, item))             # held elsewhere: look again later
                continue
            if self.settled(key):
                self.elsewhere.append(key)
                self.done(key)
                continue
            return key, item
        return None

    def put_back(self, key: str, item: object) -> None:
        self.retry.append((key, item))

    def done(self, key: str) -> None:
        if self.claims is not None:
            self.claims.release(key)

    @staticmethod
    def wait() -> None:
        time.sleep(POLL_S)


class LogTail:
    """The values of `field` in the records appended to a jsonl log since this object was made: the
    outcomes other processes recorded meanwhile. Reads only what is new, whole lines only."""

    def __init__(self, path: str | Path, field: str = "video_id"):
        self.path, self.field = Path(path), field
        self.offset = self.path.stat().st_size if self.path.exists() else 0
        self.seen: set[str] = set()

    def __contains__(self, value: str) -> bool:
        self._read()
        return value in self.seen

    def _read(self) -> None:
        if not self.path.exists():
            return
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            data = f.read()
        end = data.rfind(b"\n") + 1
        self.offset += end
        for line in data[:end].splitlines():
            try:
                self.seen.add(str(json.loads(line).get(self.field)))
            except (ValueError, AttributeError):
                continue                                     # a torn line: its writer died
