"""Independent fits at once, one per worker process (`TrainConfig.workers`).

The fits of a stage — stage 1's k folds of every modality and candidate encoder, stage 2's k folds —
never read each other's results, and each is seeded from (seed, its own directory) alone, so the
process it runs in does not change what it learns: with the same torch threads per fit, a run with
workers writes the same bytes as one without. The processes, Ctrl-C, logs and errors: `hiddenemo.pool`.
"""
from __future__ import annotations

import contextlib
import logging
import os
from functools import partial

from hiddenemo.errors import UserError
from hiddenemo.pool import WorkerPool
from hiddenemo.train.config import TrainConfig

log = logging.getLogger(__name__)


@contextlib.contextmanager
def fit_workers(config: TrainConfig):
    """The run's `FitWorkers` for `config.workers` (0: one per core), or None where the fits train one
    after the other: one worker, or a trainer that gives each fit devices of its own."""
    if config.workers < 0:
        raise UserError(f"workers must be 0 (one per core) or more, got {config.workers}")
    n = config.workers or os.cpu_count() or 1
    trainer = config.trainer
    own_devices = (trainer.accelerator != "cpu" or trainer.strategy != "auto" or str(trainer.devices) != "1"
                   or trainer.num_nodes != 1)
    if n > 1 and own_devices:
        (log.warning if config.workers > 1 else log.info)(
            "the fits train one after the other: workers trains several single-device CPU fits at once, and this "
            "trainer (accelerator %s, strategy %s, devices %s, nodes %d) gives each fit devices of its own",
            trainer.accelerator, trainer.strategy, trainer.devices, trainer.num_nodes)
        n = 1
    if n == 1:
        yield None
        return
    with FitWorkers(n, config.threads) as workers:
        yield workers


class FitWorkers(WorkerPool):
    """A `WorkerPool` whose calls run with `threads` torch threads each (None: the cores shared among
    the calls that run at once)."""

    def __init__(self, workers: int, threads: int | None):
        super().__init__(workers)
        self.threads = threads

    def map(self, fn, calls: list[tuple], names: list[str], desc: str, unit: str = "fit") -> list:
        threads = self.threads or max(1, (os.cpu_count() or 1) // min(self.workers, len(calls)))
        return super().map(partial(_with_threads, threads, fn), calls, names, desc, unit)


def _with_threads(threads: int, fn, *args):
    import torch

    torch.set_num_threads(threads)
    return fn(*args)
