"""Fixtures of the fault-injection tests: one tiny synthetic dataset, its workspace, and a reference
workspace where extract, teach and train ran once uninterrupted (what every killed-and-resumed run
must end up equal to). The reliability summary is printed by `faults.ledger`."""
from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest
from faults.campaign import command, copy_workspace, run_to_end
from faults.ledger import LEDGER

# Small on purpose: the machine is shared, and a kill test runs its command several times.
SYNTHETIC = {"seed": 3, "n_videos": 16, "n_frames": 30, "width": 96, "height": 72, "lose_share": 0.4}
# One worker, in this process: the faults are injected with mock.patch, which spawned workers never see.
EXTRACT = ["--extract.keypoints", "openpose-json", "--extract.frames", "dinov2-s", "--extract.frames_every", "10",
           "--extract.threads", "1", "--workers", "1"]
TRAIN_YAML = """\
seed: 0
threads: 1
sampling: {n_pose: 12, n_frames: 3, n_events: 8, offsets: [2], votes: 2}
model:
  modalities: [frames]
  dim: 16
  encoder_args:
    frames: {model_dim: 16, depth: 1, heads: 2}
stage1: {epochs: 2, lr: 0.003, batch_size: 4}
stage2: {epochs: 2, lr: 0.001, batch_size: 4}
selection: {folds: 2}
pseudo: {teacher: behaviour}
"""


@pytest.fixture
def ledger(request):
    return LEDGER.register(request.config)


@pytest.fixture(scope="session")
def synthetic_dataset(tmp_path_factory) -> Path:
    from hiddenemo.synthetic import generate

    out = tmp_path_factory.mktemp("faults") / "synthetic"
    generate(out, **SYNTHETIC)
    return out


@pytest.fixture(scope="session")
def base_workspace(synthetic_dataset, tmp_path_factory) -> Path:
    """The workspace after `hiddenemo dataset imigue` (manifest, events, OpenPose pose and box)."""
    from hiddenemo.commands.dataset import imigue

    work = tmp_path_factory.mktemp("faults") / "base"
    with contextlib.redirect_stdout(io.StringIO()):
        imigue(synthetic_dataset / "labels_20200831.csv", synthetic_dataset / "splits.csv", work,
               videos=synthetic_dataset / "videos", openpose=synthetic_dataset / "openpose", workers=1)
    return work


@pytest.fixture(scope="session")
def train_config(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("faults") / "tiny.yaml"
    path.write_text(TRAIN_YAML)
    return path


@pytest.fixture(scope="session")
def reference(base_workspace, train_config, tmp_path_factory) -> Path:
    """extract, teach and train, each run once to the end."""
    work = copy_workspace(base_workspace, tmp_path_factory.mktemp("faults") / "reference")
    run_to_end(command("extract", "--work", str(work), *EXTRACT))
    run_to_end(command("teach", "--work", str(work)))
    run_to_end(command("train", "--work", str(work), "--run", "r", "--config", str(train_config)))
    return work
