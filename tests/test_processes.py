"""SIGTERM stops a command as Ctrl-C does, and workers die with their parent (hiddenemo.processes)."""
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux-only")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it has stopped running, which is what counts here.
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(") ")[1][0] != "Z"


def test_sigterm_reaches_the_cleanup_as_an_interrupt(tmp_path):
    script = textwrap.dedent("""
        import sys, time
        from hiddenemo.processes import Terminated, sigterm_as_interrupt
        with sigterm_as_interrupt():
            try:
                print("ready", flush=True)
                time.sleep(30)
            except KeyboardInterrupt as e:          # the one handler that Ctrl-C's cleanup uses
                print("cleanup", type(e).__name__, flush=True)
                sys.exit(3)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=10)
    assert out.strip() == "cleanup Terminated" and proc.returncode == 3


def test_a_worker_dies_when_its_parent_is_killed(tmp_path):
    # The parent starts a worker that calls die_with_parent(), prints the worker's pid, and waits;
    # SIGKILL on the parent (no cleanup can run) must still end the worker.
    parent = textwrap.dedent("""
        import subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c",
            "from hiddenemo.processes import die_with_parent; import time; die_with_parent(); "
            "print('armed', flush=True); time.sleep(60)"], stdout=subprocess.PIPE, text=True)
        assert child.stdout.readline().strip() == "armed"
        print(child.pid, flush=True)
        time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", parent], stdout=subprocess.PIPE, text=True)
    child_pid = int(proc.stdout.readline())
    assert _alive(child_pid)
    proc.kill()
    proc.wait(timeout=10)
    deadline = time.monotonic() + 10
    while _alive(child_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child_pid)


def test_the_cli_says_terminated_and_exits_143(tmp_path):
    # `hiddenemo dataset synthetic` on a big set runs long enough to be stopped mid-way.
    cmd = [sys.executable, "-c", "import sys; from hiddenemo.cli import main; sys.exit(main())",
           "dataset", "synthetic", "--out", str(tmp_path / "s"), "--n_videos", "400"]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (tmp_path / "s").exists() and time.monotonic() < deadline:     # it has started writing
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err[-2000:]
    assert "terminated; finished work is kept" in err


def test_sigterm_inside_a_training_fit_exits_143_too(tmp_path):
    # Lightning catches the `Terminated` our SIGTERM handler raises inside a fit and exits 1; the fit
    # must hand the CLI a termination again, not Ctrl-C's interrupt (exit 130).
    import yaml
    from train_fixtures import TINY, make_workspace

    work = tmp_path / "work"
    make_workspace(work)
    config = tmp_path / "long.yaml"
    config.write_text(yaml.safe_dump({**TINY, "workers": 1, "stage1": {**TINY["stage1"], "epochs": 1000}}))
    cmd = [sys.executable, "-c", "import sys; from hiddenemo.cli import main; sys.exit(main())",
           "train", "--work", str(work), "--config", str(config), "--run", "r"]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list((work / "runs" / "r").glob("stage1/*/fold0/state.json")) and time.monotonic() < deadline:
        time.sleep(0.1)                                                       # an epoch of the first fit is done
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err[-2000:]
    assert "terminated; finished work is kept" in err
