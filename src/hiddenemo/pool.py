"""Independent calls of one function at once, one per worker process, as a long stage's parts
(a training stage's fits, the synthetic dataset's videos) run on a machine of several cores.

- spawn, not fork: the parent may have started threads already (torch's, OpenCV's), and a forked
  child can hang on the locks they held.
- Each worker ignores Ctrl-C: the parent gets it (or SIGTERM, `hiddenemo.processes`) and kills the
  workers at once (the callers write every file atomically, so what a worker finished is kept and
  the next run resumes after it); a worker whose parent dies, even by SIGKILL, is stopped too.
- Log records travel to the parent through a queue and leave through its handlers: whole lines,
  one format, each above the parent's progress bar (one step per finished call).
- A failing call lets the others finish (nothing computed is lost), then raises an error that names
  it: a `UserError` stays one (the CLI prints it without a traceback), anything else keeps the
  worker's traceback as its cause.
"""
from __future__ import annotations

import logging
import logging.handlers
import signal
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context

from hiddenemo.errors import UserError
from hiddenemo.processes import die_with_parent

log = logging.getLogger(__name__)


class WorkerPool:
    """Up to `workers` processes, started at the first `map` and kept for later ones (a worker's
    start, importing its libraries, can cost seconds)."""

    def __init__(self, workers: int):
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None
        self._listener: logging.handlers.QueueListener | None = None

    def map(self, fn, calls: list[tuple], names: list[str], desc: str, unit: str = "it", progress: bool = True) -> list:
        """`fn(*call)` for every call, in the workers; the results in the order of `calls`. `names`
        name the calls in errors, `desc` and `unit` the progress bar (none without `progress`)."""
        from tqdm import tqdm

        pool = self._start()
        running = {pool.submit(fn, *call): i for i, call in enumerate(calls)}
        results, failed = [None] * len(calls), {}
        with tqdm(total=len(calls), unit=unit, desc=desc, dynamic_ncols=True, disable=not progress) as bar:
            try:
                while running:
                    done, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in done:
                        i = running.pop(future)
                        if future.exception() is None:
                            results[i] = future.result()
                        else:
                            failed[i] = future.exception()
                            log.error("%s failed: %s: %s", names[i], type(failed[i]).__name__, failed[i])
                        bar.update()
            except BaseException:
                for future in running:
                    future.cancel()
                self.close(kill=True)       # Ctrl-C: stop the calls in flight now, not at their end
                raise
        if failed:
            i = min(failed)
            raise _error(names[i], failed[i], len(failed), len(calls)) from failed[i]
        return results

    def _start(self) -> ProcessPoolExecutor:
        if self._pool is None:
            context = get_context("spawn")
            queue = context.Queue()
            self._listener = logging.handlers.QueueListener(queue, _ToLoggers())
            self._listener.start()
            self._pool = ProcessPoolExecutor(self.workers, mp_context=context, initializer=_init_worker,
                                             initargs=(queue, logging.getLogger().getEffectiveLevel()))
        return self._pool

    def close(self, kill: bool = False) -> None:
        if self._pool is not None:
            if kill:
                # SIGKILL: Lightning, for one, answers SIGTERM by finishing its epoch first. This pool's
                # workers only: another pool of the same process keeps its own.
                for worker in list((self._pool._processes or {}).values()):
                    worker.kill()
            self._pool.shutdown(wait=not kill, cancel_futures=True)
            self._pool = None
        if self._listener is not None:
            self._listener.stop()
            self._listener = None

    def __enter__(self) -> "WorkerPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _error(name: str, error: BaseException, n_failed: int, n: int) -> Exception:
    others = f" ({n_failed - 1} more of the {n} failed too; the log names them)" if n_failed > 1 else ""
    if isinstance(error, UserError):
        return UserError(f"{name}: {error}{others}")
    if isinstance(error, BrokenProcessPool):
        return RuntimeError(f"the worker process of {name} died{others} (out of memory? or, in a Python script, the "
                            "call is not under `if __name__ == '__main__':`, which worker processes need); finished "
                            "work is kept: run again to resume, with workers = 1 for one at a time in this process")
    return RuntimeError(f"{name} failed: {type(error).__name__}: {error}{others}; the others finished and are kept, "
                        "and a rerun resumes (the worker's traceback is below)")


def _init_worker(queue, level: int) -> None:
    # SIGKILL: Lightning answers SIGTERM by stopping after its batch, and a worker that then waits on
    # the pool's queue can hang on a lock its dead sibling held; nothing here needs a clean exit.
    die_with_parent(signal.SIGKILL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    root = logging.getLogger()
    root.handlers[:] = [logging.handlers.QueueHandler(queue)]
    root.setLevel(level)


class _ToLoggers(logging.Handler):
    """A worker's record handed to the parent's logger of the same name (its level, handlers, format),
    written on a line of its own above the progress bar."""

    def emit(self, record: logging.LogRecord) -> None:
        from tqdm import tqdm

        with tqdm.external_write_mode():
            logging.getLogger(record.name).handle(record)
