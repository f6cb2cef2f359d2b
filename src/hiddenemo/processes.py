"""Stopping cleanly: a `kill` (SIGTERM, what schedulers and `timeout` send) stops a command the way
Ctrl-C does, and a worker process never outlives the command that started it.

Without this, SIGTERM ended the command at once — its cleanup (which stops the worker processes of
`extract`) never ran — and the workers carried on with their videos as orphans, holding cores and
their claims.
"""
from __future__ import annotations

import contextlib
import ctypes
import signal
import sys
import threading


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C's KeyboardInterrupt would be, so every cleanup path serves both."""


def _raise_terminated(signum, frame):
    raise Terminated()


@contextlib.contextmanager
def sigterm_as_interrupt():
    """While the block runs, SIGTERM raises `Terminated` in the main thread (elsewhere a no-op: only
    the main thread may set handlers)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def die_with_parent(signum: int = signal.SIGTERM) -> None:
    """Call first in a worker process: on Linux the kernel sends it `signum` when its parent dies, even by
    SIGKILL (prctl PR_SET_PDEATHSIG). Elsewhere nothing: the pool's broken pipe ends the worker after the
    task it holds."""
    if not sys.platform.startswith("linux"):
        return
    PR_SET_PDEATHSIG = 1
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, int(signum))
