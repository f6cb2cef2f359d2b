"""Fits in worker processes (`TrainConfig.workers`) write the same run as fits one after the other; a
failing fit is named and the others are kept; a run resumes with another number of workers."""
from __future__ import annotations

import logging

import pytest
from train_fixtures import add_teacher, hide_test_labels, make_workspace, tiny_config

from hiddenemo.errors import UserError
from hiddenemo.train.run import train_run
from hiddenemo.train.workers import fit_workers

RUN_FILES = ("oof.csv", "selection.json", "predictions.csv", "metrics.json")
SMALL = {"model": {"modalities": ["text", "events"], "dim": 16,
                   "encoder_args": {"events-transformer": {"model_dim": 16, "depth": 1, "heads": 2}},
                   "candidates": {"events": ["events-stats"]}},         # stage 1: 9 fits in one batch
         "pseudo": {"teacher": "rules"}}


def _workspace(work):
    manifest = make_workspace(work, n_train=18, n_test=6)
    add_teacher(work, manifest)
    hide_test_labels(work)
    # the events' sampling rate, which the pooled candidate (events-stats) reads
    from hiddenemo.data.store import Store
    store = Store(work)
    for video_id in manifest["video_id"]:
        store.save(video_id, "events", store.load(video_id, "events"), "test", "1", params={"rate_hz": 25.0})


def test_two_workers_write_the_same_run_as_one(tmp_path):
    for name in ("serial", "parallel"):
        _workspace(tmp_path / name)
    train_run(tmp_path / "serial", "r", tiny_config(**SMALL, workers=1))

    # One fold's state is garbage: that fit fails in its worker, the others of stage 1 finish.
    broken = tmp_path / "parallel" / "runs" / "r" / "stage1" / "events" / "events-transformer" / "fold1"
    broken.mkdir(parents=True)
    (broken / "state.json").write_text("{not json")
    with pytest.raises(RuntimeError, match=r"stage1/events/events-transformer/fold1 failed: JSONDecodeError"):
        train_run(tmp_path / "parallel", "r", tiny_config(**SMALL, workers=2))
    stage1 = tmp_path / "parallel" / "runs" / "r" / "stage1"
    assert all((stage1 / fit / "done.json").exists() for fit in ("text/fold2", "events/events-stats/fold2",
                                                                 "events/events-transformer/fold2"))

    (broken / "state.json").unlink()
    train_run(tmp_path / "parallel", "r", tiny_config(**SMALL, workers=2))       # resumes
    for name in RUN_FILES:
        serial, parallel = (tmp_path / w / "runs" / "r" / name for w in ("serial", "parallel"))
        assert serial.read_bytes() == parallel.read_bytes(), name

    # The finished run read again with one worker: workers is not part of what the run is.
    train_run(tmp_path / "parallel", "r", tiny_config(**SMALL, workers=1))


def test_a_trainer_with_devices_of_its_own_trains_fits_one_after_the_other(caplog):
    caplog.set_level(logging.INFO, logger="hiddenemo.train.workers")
    with fit_workers(tiny_config(workers=2, trainer={"strategy": "ddp", "devices": 2})) as workers:
        assert workers is None
    assert "one after the other" in caplog.text and "strategy ddp" in caplog.text
    with fit_workers(tiny_config(workers=2)) as workers:
        assert workers is not None and workers.workers == 2
    with pytest.raises(UserError, match="workers must be 0"):
        with fit_workers(tiny_config(workers=-1)):
            pass
