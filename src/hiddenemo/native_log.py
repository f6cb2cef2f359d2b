"""Native libraries' chatter kept off the terminal (HIDDENEMO_LOG=DEBUG shows it).

MediaPipe's C++ code logs through absl straight to file descriptor 2, about a hundred lines per
video ("W0000 ... inference_feedback_manager.cc:114] Feedback manager requires a model with a
single signature..."); no environment variable turns that off. So while a command runs, descriptor
2 is a pipe read by a thread that forwards everything except those info and warning lines (native
errors still show), and Python's own `sys.stderr` writes to the real stderr directly. Worker
processes inherit the pipe, so their native lines are filtered too.
"""
from __future__ import annotations

import contextlib
import io
import os
import re
import sys
import threading

# absl/glog info and warning lines, and the two banners TensorFlow Lite and absl print once.
CHATTER = re.compile(rb"^(?:[IW]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [^\]\s]+:\d+\] "
                     rb"|INFO: Created TensorFlow Lite"
                     rb"|WARNING: All log messages before absl::InitializeLog\(\) is called)")


def is_chatter(line: bytes) -> bool:
    return CHATTER.match(line) is not None


def _maybe_chatter(partial: bytes) -> bool:
    """Whether an unfinished line could still turn out to be chatter (then it waits for its end; any
    other text, such as a progress bar redrawn with \\r, goes out at once)."""
    return partial[:1] in (b"I", b"W")


def _pump(read_fd: int, write_fd: int) -> None:
    pending = b""
    while True:
        chunk = os.read(read_fd, 65536)
        if not chunk:
            break
        *lines, pending = (pending + chunk).split(b"\n")
        out = b"".join(line + b"\n" for line in lines if not is_chatter(line))
        if pending and not _maybe_chatter(pending):
            out, pending = out + pending, b""
        if out:
            os.write(write_fd, out)
    if pending and not is_chatter(pending):
        os.write(write_fd, pending)
    os.close(read_fd)
    os.close(write_fd)


@contextlib.contextmanager
def quiet_native_logs(enabled: bool = True):
    """Filter native chatter from descriptor 2 inside the block. A no-op when disabled, or when
    `sys.stderr` is not descriptor 2 (captured by a test, say)."""
    try:
        on_fd2 = enabled and sys.stderr.fileno() == 2
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        on_fd2 = False
    if not on_fd2:
        yield
        return
    sys.stderr.flush()
    real = os.dup(2)                          # the terminal (or log file) itself
    read_fd, write_fd = os.pipe()
    os.dup2(write_fd, 2)
    os.close(write_fd)
    thread = threading.Thread(target=_pump, args=(read_fd, os.dup(real)), name="native-log", daemon=True)
    thread.start()
    python_stderr = sys.stderr
    sys.stderr = os.fdopen(real, "w", buffering=1, encoding=python_stderr.encoding, errors="backslashreplace")
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(sys.stderr.fileno(), 2)       # closes the pipe's last writer here: the thread drains it
        thread.join(timeout=2.0)
        sys.stderr.close()
        sys.stderr = python_stderr
