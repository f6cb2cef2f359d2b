"""A tiny synthetic workspace written straight into the store, for the training tests: labels carry a
signal in every modality so a few epochs learn something, and the test split has labels (to check
that training never reads them)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from hiddenemo.data.manifest import DatasetInfo, write_manifest
from hiddenemo.data.store import Store
from hiddenemo.train.config import TrainConfig, from_dict

TINY = {
    "seed": 0,
    "threads": 1,
    "workers": 1,                      # one after the other, in this process (monkeypatched tests need that)
    "sampling": {"n_pose": 12, "n_frames": 6, "n_events": 10, "offsets": [2], "votes": 2},
    "model": {"modalities": ["pose", "frames", "text", "events"], "dim": 16,
              "encoder_args": {"pose": {"frame_dim": 16, "point_hidden": 4, "depth": 1, "heads": 2},
                               "frames": {"model_dim": 16, "depth": 1, "heads": 2},
                               "events": {"model_dim": 16, "depth": 1, "heads": 2}}},
    "stage1": {"epochs": 3, "lr": 3e-3, "batch_size": 8},
    "stage2": {"epochs": 2, "lr": 1e-3, "batch_size": 8},
    "selection": {"folds": 3},
    "pseudo": {"teacher": None},
}


def tiny_config(**overrides) -> TrainConfig:
    data = {**TINY, **overrides}
    return from_dict(TrainConfig, data)


def make_workspace(work: Path, n_train: int = 24, n_test: int = 8, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    store = Store(work)
    rows = []
    for i in range(n_train + n_test):
        vid = f"v{i:03d}"
        label = int(rng.random() < 0.6)
        split = "train" if i < n_train else "test"
        rows.append({"video_id": vid, "label": label, "split": split, "subject_id": f"s{i % 7}", "source": "synthetic"})
        t = int(rng.integers(30, 60))
        pose = rng.normal(0.5, 0.05 + 0.05 * label, size=(t, 137, 3)).astype(np.float16)
        pose[..., 2] = 0.9
        pose[rng.random(t) < 0.1, 100:] = np.nan                           # some missing hands
        store.save(vid, "pose", pose, "test", "1")
        if i % 5 != 3:                                                     # some videos lack frames
            frames = rng.normal(label * 0.8, 1.0, size=(t // 2, 12)).astype(np.float16)
            store.save(vid, "frames", frames, "test", "1")
            store.save(vid, "frames_idx", np.arange(0, t, 2)[: t // 2].astype(np.int64), "test", "1")
        store.save(vid, "text.minilm", rng.normal(label * 0.5, 1.0, size=(8,)).astype(np.float32), "test", "1")
        events = (rng.random((t // 3, 32)) < 0.05 + 0.1 * label).astype(np.uint8)
        store.save(vid, "events", events, "test", "1")
    manifest = pd.DataFrame(rows)
    write_manifest(work, manifest)
    DatasetInfo(name="tiny", classes=["lose", "win"], positive="win").save(work)
    return manifest


def add_teacher(work: Path, manifest: pd.DataFrame, teacher_id: str = "rules", accuracy: float = 0.8,
                seed: int = 1) -> None:
    """Verdicts for every video, right with probability `accuracy` (against the fixture's hidden truth)."""
    from hiddenemo.teacher.schema import Verdict
    from hiddenemo.teacher.store import append_verdict

    rng = np.random.default_rng(seed)
    for row in manifest.itertuples():
        right = rng.random() < accuracy
        says_win = bool(row.label) == right
        p = float(np.clip(rng.normal(0.75 if says_win else 0.25, 0.1), 0.01, 0.99))
        append_verdict(work, Verdict(video_id=row.video_id, teacher_id=teacher_id, p_positive=p,
                                     label="win" if p >= 0.5 else "lose", text="synthetic"))


def hide_test_labels(work: Path) -> None:
    """Blank the test labels in the manifest, as in the challenge (the teacher labels those videos)."""
    from hiddenemo.data.manifest import read_manifest

    manifest = read_manifest(work)
    manifest.loc[manifest["split"] == "test", "label"] = pd.NA
    write_manifest(work, manifest)


class Killed(Exception):
    """Stands for a kill: raised right after a fit's epoch checkpoint is written."""


def die_after_epoch(monkeypatch, fit: tuple[str, str], epoch: int) -> None:
    """Make the fit whose directory ends in `fit` (e.g. ("events", "fold1")) raise Killed at the end
    of `epoch` (1-based), after its checkpoint is on disk."""
    from hiddenemo.train import module

    real_end = module.EpochCheckpoint.on_train_epoch_end

    def end_then_die(self, trainer, mod):
        real_end(self, trainer, mod)
        if self.directory.parts[-2:] == fit and mod.epoch + 1 == epoch:
            raise Killed()

    monkeypatch.setattr(module.EpochCheckpoint, "on_train_epoch_end", end_then_die)


def study_workspace(tmp_path: Path, config: dict, n_train: int) -> tuple[Path, Path]:
    """An ablation study's inputs: a workspace with a teacher's verdicts and hidden test labels, and
    the base config written as YAML."""
    import yaml

    manifest = make_workspace(tmp_path / "w", n_train=n_train, n_test=4)
    add_teacher(tmp_path / "w", manifest)
    hide_test_labels(tmp_path / "w")
    base = tmp_path / "base.yaml"
    base.write_text(yaml.safe_dump(config))
    return tmp_path / "w", base
