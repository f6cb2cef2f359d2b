"""Retries, rate limits and secrets for the API teachers.

A backend turns each provider error into one of two exceptions: `Retryable` (429, 5xx, a dropped
connection; with the server's own delay when it sent one) or `TeacherFailure` (a refusal, a
truncated or malformed answer, a 4xx: asking again the same way would not help). `call_with_retries`
honours the server's delay, backs off exponentially otherwise, and gives up after `max_retries`
with a `TeacherFailure` naming the last error. A `RateGate` shared by the worker threads makes all of
them pause when one is told to slow down, instead of each finding out with its own 429.
"""
from __future__ import annotations

import logging
import os
import random
import re
import threading
import time
from collections.abc import Callable
from typing import TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")

SECRET_ENV = ("GEMINI_API_KEY", "GOOGLE_API_KEY", "OPENAI_API_KEY")


class TeacherFailure(Exception):
    """The teacher could not give a usable answer; `reason` is recorded in the verdict."""

    def __init__(self, reason: str, raw: str = "", **usage):
        super().__init__(redact(reason))
        self.reason = redact(reason)
        self.raw = redact(raw)
        self.usage = usage


class Retryable(Exception):
    """A transient error; `delay_s` is the server's requested wait, if it gave one."""

    def __init__(self, reason: str, delay_s: float | None = None):
        super().__init__(redact(reason))
        self.reason = redact(reason)
        self.delay_s = delay_s


def secrets() -> list[str]:
    """The API keys present in the environment (the only place keys are read from)."""
    return [v for v in (os.environ.get(k, "") for k in SECRET_ENV) if len(v) >= 6]


def redact(text: str) -> str:
    for secret in secrets():
        text = text.replace(secret, "[redacted]")
    return text


class RedactingFilter(logging.Filter):
    """Scrubs API keys from every log record that passes a handler (including third-party loggers)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if secrets():
            record.msg = redact(record.getMessage())
            record.args = ()
        return True


def install_log_redaction() -> None:
    root = logging.getLogger()
    for handler in root.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())


def parse_duration(value) -> float | None:
    """'12s', '1.5s', '250ms', 12, '12' -> seconds; None when unreadable."""
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(ms|s)?\s*", str(value))
    if not m:
        return None
    return float(m.group(1)) / (1000.0 if m.group(2) == "ms" else 1.0)


class RateGate:
    """Shared pause: after a 429 with a delay, every worker waits until the delay is over."""

    def __init__(self, sleep: Callable[[float], None] = time.sleep):
        self._until = 0.0
        self._lock = threading.Lock()
        self._sleep = sleep

    def hold(self, seconds: float) -> None:
        with self._lock:
            self._until = max(self._until, time.monotonic() + seconds)

    def wait(self) -> None:
        with self._lock:
            left = self._until - time.monotonic()
        if left > 0:
            self._sleep(left)


def call_with_retries(fn: Callable[[], T], *, max_retries: int, backoff_s: float, max_backoff_s: float,
                      gate: RateGate | None = None, sleep: Callable[[float], None] = time.sleep,
                      what: str = "request") -> T:
    """Run `fn`, retrying `Retryable` errors up to `max_retries` times; other exceptions pass through."""
    for attempt in range(max_retries + 1):
        if gate is not None:
            gate.wait()
        try:
            return fn()
        except Retryable as e:
            if attempt == max_retries:
                raise TeacherFailure(f"{e.reason} (gave up after {max_retries} retries)") from None
            if e.delay_s is not None:
                delay = min(e.delay_s, max_backoff_s)
                if gate is not None:
                    gate.hold(delay)
            else:
                # Full jitter keeps parallel workers from retrying in lock-step.
                delay = min(max_backoff_s, backoff_s * 2 ** attempt) * (0.5 + 0.5 * random.random())
            log.info("%s: %s; retry %d/%d in %.1f s", what, e.reason, attempt + 1, max_retries, delay)
            sleep(delay)
    raise AssertionError("unreachable")
