"""Claims and locks of a shared workspace (data/claims.py): one holder at a time, a dead or silent
holder taken over exactly once, a heartbeat that keeps a live claim fresh, manifest updates from
several processes that all survive, and a second `train` of a run refused while the first lives."""
from __future__ import annotations

import json
import multiprocessing as mp
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from hiddenemo.data.claims import STALE_S, Claims, LogTail, SharedQueue, exclusive, hold_run
from hiddenemo.data.manifest import read_manifest, update_manifest, write_manifest
from hiddenemo.errors import UserError


def dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(proc.stdout)


def plant(claims: Claims, key: str, age_s: float = 0.0, **owner) -> Path:
    """A claim file written by someone else (`owner`), `age_s` seconds since its last heartbeat."""
    path = claims.path(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"token": "other", "since": time.time() - age_s, **owner}))
    os.utime(path, (time.time() - age_s,) * 2)
    return path


def test_one_holder_at_a_time_and_release(tmp_path):
    with Claims.of_stage(tmp_path, "extract") as a, Claims.of_stage(tmp_path, "extract") as b:
        assert a.claim("v1") and a.claim("v1")                 # idempotent for its holder
        assert not b.claim("v1")
        assert b.holder("v1")["token"] == a.owner["token"] and b.holder("v1")["pid"] == os.getpid()
        assert b.claim("v2")
        a.release("v1")
        assert a.holder("v1") is None and b.claim("v1")
        b.release("v1")
        a.release("v2")                                        # not a's: b keeps it
        assert b.path("v2").exists()
    assert not list((tmp_path / "claims" / "extract").glob("*.claim"))   # released on exit


def test_stale_claims_are_taken_over_live_ones_are_not(tmp_path):
    with Claims.of_stage(tmp_path, "extract") as me:
        here = me.owner["host"]
        plant(me, "dead-here", host=here, pid=dead_pid())                       # died on this host
        plant(me, "silent-elsewhere", age_s=STALE_S + 5, host="node7/1", pid=1)  # no heartbeat for long
        plant(me, "alive-elsewhere", age_s=1, host="node7/1", pid=1)
        plant(me, "alive-here", age_s=1, host=here, pid=os.getppid())
        plant(me, "hung-here", age_s=STALE_S + 5, host=here, pid=os.getppid())  # alive, no heartbeat for long
        assert me.claim("dead-here") and me.claim("silent-elsewhere") and me.claim("hung-here")
        assert not me.claim("alive-elsewhere") and not me.claim("alive-here")
        assert json.loads(me.path("dead-here").read_text())["token"] == me.owner["token"]


def test_the_heartbeat_keeps_a_claim_fresh_and_notices_a_takeover(tmp_path):
    with Claims.of_stage(tmp_path, "extract", heartbeat_s=0.05) as me:
        me.claim("v")
        os.utime(me.path("v"), (time.time() - 500,) * 2)
        time.sleep(0.3)
        assert time.time() - me.path("v").stat().st_mtime < 5
        me.path("v").write_text(json.dumps({"token": "thief", "host": "x/1", "pid": 1}))
        time.sleep(0.3)
        assert "v" not in me.held
    assert json.loads(me.path("v").read_text())["token"] == "thief"   # not ours to release


def _race(folder: str, start: float, out) -> None:
    claims = Claims.of_stage(folder, "extract")
    while time.time() < start:
        pass
    out.put(claims.claim("v"))


def test_a_stale_claim_is_taken_over_by_exactly_one_of_many(tmp_path):
    plant(Claims.of_stage(tmp_path, "extract"), "v", age_s=STALE_S + 5, host="gone/1", pid=1)
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    start = time.time() + 2.0
    procs = [ctx.Process(target=_race, args=(str(tmp_path), start, out)) for _ in range(6)]
    for p in procs:
        p.start()
    results = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join()
    assert sorted(results) == [False] * 5 + [True]


def _bump(work: str, video_id: str, n: int) -> None:
    for i in range(1, n + 1):
        update_manifest(work, pd.DataFrame([{"video_id": video_id, "n_frames": i}]))


def test_manifest_updates_from_several_processes_are_all_kept(work):
    ids = [f"v{i}" for i in range(4)]
    write_manifest(work, pd.DataFrame({"video_id": ids, "split": "train"}))
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_bump, args=(str(work), vid, 15)) for vid in ids]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
        assert p.exitcode == 0
    assert read_manifest(work)["n_frames"].tolist() == [15] * 4        # no update lost
    assert not (work / "manifest.parquet.lock").exists()


def test_exclusive_waits_for_the_holder_and_names_it_when_it_does_not_let_go(tmp_path):
    target = tmp_path / "file"
    with exclusive(target):
        with pytest.raises(UserError, match=f"locked by pid {os.getpid()}"):
            with exclusive(target, timeout_s=0.2):
                pass
    with exclusive(target, timeout_s=0.2):
        pass


def test_shared_queue_skips_what_another_process_settled(tmp_path):
    log = tmp_path / "status.jsonl"
    log.write_text('{"video_id": "old"}\n')
    tail = LogTail(log)
    with Claims.of_stage(tmp_path, "s") as mine, Claims.of_stage(tmp_path, "s") as other:
        other.claim("b")
        queue = SharedQueue([(k, k.upper()) for k in ("old", "a", "b", "c")], mine, tail.__contains__)
        assert queue.take() == ("old", "OLD")                  # recorded before this run began
        with open(log, "a") as f:
            f.write('{"video_id": "c"}\n{"video_id": "a"')     # c finished elsewhere; a's line still torn
        assert queue.take() == ("a", "A")
        assert queue.take() is None                            # b is held elsewhere, c was settled there
        assert queue.elsewhere == ["c"] and bool(queue)
        other.release("b")
        assert queue.take() == ("b", "B") and not queue
        queue.put_back("b", "B")                               # a retry needs no new claim
        assert queue.take() == ("b", "B")


def test_a_second_train_of_the_same_run_is_refused_while_the_first_lives(work):
    from hiddenemo.cli import main

    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\n"
        "from hiddenemo.data.claims import hold_run\n"
        f"with hold_run({str(work)!r}, 'r'):\n"
        "    print('held', flush=True)\n"
        "    time.sleep(600)\n")], stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")})
    try:
        assert holder.stdout.readline().strip() == "held"
        assert main(["train", "--work", str(work), "--run", "r"]) == 2
        with pytest.raises(UserError, match=f"run 'r' is being trained by pid {holder.pid}"):
            with hold_run(work, "r"):
                pass
        with hold_run(work, "other"):                          # another run is free
            pass
    finally:
        holder.kill()
        holder.wait()
    with hold_run(work, "r"):                                  # its trainer died: taken over at once
        pass


@pytest.mark.parametrize("env, first", [({}, True), ({"LOCAL_RANK": "1", "NODE_RANK": "0"}, False),
                                        ({"RANK": "0", "LOCAL_RANK": "0"}, True), ({"SLURM_PROCID": "3"}, False),
                                        ({"RANK": "2"}, False)])
def test_only_the_first_rank_of_a_ddp_launch_holds_the_run(monkeypatch, env, first):
    """torchrun, srun and Lightning's own DDP processes run the same `train` command in every rank:
    the later ranks must not be refused by the first one's hold."""
    from hiddenemo.train.session import first_rank

    for var in ("RANK", "SLURM_PROCID", "OMPI_COMM_WORLD_RANK", "PMI_RANK", "LOCAL_RANK", "NODE_RANK"):
        monkeypatch.delenv(var, raising=False)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    assert first_rank() is first
