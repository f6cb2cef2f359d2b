"""Training on several processes: the samplers shard exactly, and a real 2-process DDP fit on CPU
(gloo) evaluates the same videos, each exactly once with all its votes, as one process, writes its
checkpoints from rank 0 only, and (dropout off, per-process batch halved) ends with the same
validation probabilities."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from hiddenemo.train import distributed
from hiddenemo.train.distributed import DistributedEpochShuffle, EpochShuffle, VotingEvalSampler

TESTS = Path(__file__).resolve().parent


def per_rank(monkeypatch, world: int, make):
    """What each of `world` ranks would iterate (the rank is faked; the samplers ask at iteration)."""
    out = []
    for rank in range(world):
        monkeypatch.setattr(distributed, "rank_and_world", lambda r=rank: (r, world))
        sampler = make()
        items = list(sampler)
        assert len(items) == len(sampler)
        out.append(items)
    return out


@pytest.mark.parametrize("world", [1, 2, 3, 4])
def test_eval_sampler_gives_every_video_once_with_all_its_votes(monkeypatch, world):
    for n_videos in range(1, 10):
        for draws in (1, 3):
            ranks = per_rank(monkeypatch, world, lambda: VotingEvalSampler(n_videos, draws))
            flat = [i for items in ranks for i in items]
            assert sorted(flat) == list(range(n_videos * draws))              # no duplicate, no omission
            owners = {}
            for rank, items in enumerate(ranks):
                for i in items:
                    assert owners.setdefault(i % n_videos, rank) == rank       # a video's votes stay together
            if world == 1:
                assert ranks[0] == list(range(n_videos * draws))               # the single-process order


def test_train_sampler_shards_one_permutation_and_reshuffles_each_epoch(monkeypatch):
    (single,) = per_rank(monkeypatch, 1, lambda: DistributedEpochShuffle(10, seed=7))
    assert single == list(EpochShuffle(10, seed=7))                            # unchanged on one process
    ranks = per_rank(monkeypatch, 2, lambda: DistributedEpochShuffle(10, seed=7))
    assert [i for pair in zip(*ranks) for i in pair] == single                 # rank batches add up to the global one
    uneven = per_rank(monkeypatch, 3, lambda: DistributedEpochShuffle(10, seed=7))
    assert {len(r) for r in uneven} == {4} and set(sum(uneven, [])) == set(range(10))   # padded: same steps
    later = DistributedEpochShuffle(10, seed=7)
    later.set_epoch(1)
    monkeypatch.setattr(distributed, "rank_and_world", lambda: (0, 1))
    assert list(later) != single and sorted(later) == sorted(single)


def fit_and_record(work: Path, run_dir: Path, devices: int, batch: int) -> None:
    """One stage-1 fit (2 epochs, 16 training and 7 validation videos) with spies on which videos
    each process evaluates and which checkpoints it writes; each rank saves them to rank<r>.json.
    Run in this process for devices=1, as a script (`python test_ddp.py ...`) for DDP, which
    Lightning starts again for rank 1."""
    import torch.distributed as dist

    from hiddenemo.data.manifest import read_manifest
    from hiddenemo.data.store import Store
    from hiddenemo.train import module
    from hiddenemo.train.data import modality_dims
    from hiddenemo.train.stages import Context, Fit, fit
    from train_fixtures import tiny_config

    seen, saves = [], []
    validation_step, save_weights = module.ClassifierModule.validation_step, module.save_weights

    def spy_validation(self, b, i):
        seen.extend(b["index"].tolist())
        return validation_step(self, b, i)

    def spy_save(model, path):
        saves.append(Path(path).name)
        return save_weights(model, path)

    module.ClassifierModule.validation_step, module.save_weights = spy_validation, spy_save
    try:
        config = tiny_config(trainer={"devices": devices, "strategy": "ddp" if devices > 1 else "auto"},
                             stage1={"epochs": 2, "lr": 3e-3, "batch_size": batch, "dropout": 0.0})
        rows = read_manifest(work).assign(target=lambda d: d["label"].astype("float32"), weight=1.0)
        train, val = rows.iloc[:16], rows.iloc[16:23]       # 7 videos to validate: uneven over 2 ranks
        dims = modality_dims(Store(work), rows["video_id"].tolist(), ["pose"], config.sampling, "minilm")
        state = fit(Fit(Context(work, run_dir, config, dims), ["pose"], config.stage1, train, val, run_dir / "fit", 2,
                        fused=False, keep_every_epoch=True))
    finally:
        module.ClassifierModule.validation_step, module.save_weights = validation_step, save_weights
    rank = dist.get_rank() if dist.is_initialized() else 0
    (run_dir / f"rank{rank}.json").write_text(json.dumps({"seen": seen, "saves": saves, "state": state}))


def run_fit(work: Path, run_dir: Path, devices: int, batch: int) -> list[dict]:
    run_dir.mkdir(parents=True)
    if devices == 1:
        fit_and_record(work, run_dir, devices, batch)
    else:
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
        proc = subprocess.run([sys.executable, __file__, str(work), str(run_dir), str(devices), str(batch)],
                              env=env, capture_output=True, text=True, timeout=240, cwd=run_dir)
        assert proc.returncode == 0, proc.stderr[-3000:]
    return [json.loads((run_dir / f"rank{r}.json").read_text()) for r in range(devices)]


def test_two_process_ddp_evaluates_each_video_once_like_one_process(tmp_path):
    from train_fixtures import make_workspace

    work = tmp_path / "work"
    work.mkdir()
    make_workspace(work, n_train=24, n_test=0)
    (single,) = run_fit(work, tmp_path / "single" / "run", devices=1, batch=8)
    ddp = run_fit(work, tmp_path / "ddp" / "run", devices=2, batch=4)

    votes, epochs, val = 2, 2, range(7)                                       # tiny_config: votes 2
    assert Counter(single["seen"]) == {v: votes * epochs for v in val}
    assert Counter(ddp[0]["seen"]) + Counter(ddp[1]["seen"]) == Counter(single["seen"])
    assert not set(ddp[0]["seen"]) & set(ddp[1]["seen"])                     # a video on one rank only
    assert ddp[1]["saves"] == [] and ddp[0]["saves"] == single["saves"] == ["epoch-1.safetensors",
                                                                             "epoch-2.safetensors"]
    for a, b in zip(single["state"]["history"], ddp[0]["state"]["history"]):
        assert len(b["val_probs"]) == 7 and np.isfinite(b["val_probs"]).all()
        np.testing.assert_allclose(b["val_probs"], a["val_probs"], atol=1e-4)   # same training, sharded
        assert b["train_loss"] == pytest.approx(a["train_loss"], abs=1e-4)    # reduced across ranks
    assert ddp[1]["state"] == ddp[0]["state"]                                 # every rank read rank 0's state


if __name__ == "__main__":
    sys.path.insert(0, str(TESTS))
    fit_and_record(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
