"""Training on several processes (DDP through Lightning): samplers that shard, metrics that gather.

Both samplers ask `torch.distributed` for the rank and the world size when they are iterated, not
when they are built, so one sampler serves a single process, `devices=2` on one box, and
torchrun/srun over nodes (Lightning creates the process group after the loaders are made). With
one process they give exactly the order the single-process code always had.

- `EpochShuffle`: the single-process shuffle, from (seed, epoch) only, so epoch e is the same after
  a resume.
- `DistributedEpochShuffle`: every rank draws the same (seed, epoch) permutation and takes every
  world-th index of it, so per-rank batches of `batch_size / world` add up to the single-process
  batch; the dataset itself draws fresh rows per epoch (`VideoDataset.set_epoch`, the resampling
  augmentation), which is unchanged. The permutation is padded by wrapping round so every rank
  runs the same number of steps (DDP's gradient all-reduce needs that).
- `VotingEvalSampler`: shares out videos, not samples: rank r evaluates videos r, r + W, ... with
  all their voting draws, so each video is evaluated exactly once, on one rank, and its votes are
  never split. No padding: ranks may differ by one video and the last batch may be short
  (evaluation runs no collective per batch, so uneven ranks are fine).
- `gather_validation`: every rank's (video index, probability, loss) to every rank, once per
  epoch, so voting and metrics see all videos.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import Sampler


class EpochShuffle(Sampler[int]):
    """A shuffle that depends only on (seed, epoch), so epoch e is the same after a resume."""

    def __init__(self, n: int, seed: int):
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self):
        return iter(np.random.default_rng([self.seed, self.epoch]).permutation(self.n).tolist())

    def __len__(self) -> int:
        return self.n


def rank_and_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class DistributedEpochShuffle(EpochShuffle):
    """`EpochShuffle`, sharded across ranks (identical to it on one process)."""

    def __iter__(self):
        rank, world = rank_and_world()
        order = np.random.default_rng([self.seed, self.epoch]).permutation(self.n)
        if world > 1:
            order = np.resize(order, -(-self.n // world) * world)[rank::world]   # wrap round, then every world-th
        return iter(order.tolist())

    def __len__(self) -> int:
        _, world = rank_and_world()
        return -(-self.n // world)


class VotingEvalSampler(Sampler[int]):
    """Indices of a draw-major evaluation dataset (`i = draw * n_videos + video`) for this rank:
    its share of the videos, every draw of each."""

    def __init__(self, n_videos: int, draws: int):
        self.n_videos, self.draws = n_videos, draws

    def videos(self, rank: int, world: int) -> np.ndarray:
        return np.arange(rank, self.n_videos, world)

    def __iter__(self):
        rank, world = rank_and_world()
        mine = self.videos(rank, world)
        return iter((np.arange(self.draws)[:, None] * self.n_videos + mine[None, :]).reshape(-1).tolist())

    def __len__(self) -> int:
        rank, world = rank_and_world()
        return len(self.videos(rank, world)) * self.draws


def gather_validation(outputs: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(video index, probability) per sample and the loss per batch, of all ranks.

    Every rank must call this once per validation epoch, also a rank that evaluated nothing."""
    index = torch.cat([o[0] for o in outputs]).numpy() if outputs else np.zeros(0, np.int64)
    probs = torch.cat([o[1] for o in outputs]).double().numpy() if outputs else np.zeros(0)
    losses = np.array([float(o[2]) for o in outputs])
    _, world = rank_and_world()
    if world > 1:
        parts: list = [None] * world
        dist.all_gather_object(parts, (index, probs, losses))
        index, probs, losses = (np.concatenate([p[k] for p in parts]) for k in range(3))
    return index, probs, losses


def mean_across_ranks(value: float) -> float:
    """The mean of a per-rank figure (e.g. the epoch's training loss) over all ranks."""
    _, world = rank_and_world()
    if world == 1:
        return value
    parts: list = [None] * world
    dist.all_gather_object(parts, float(value))
    return float(np.mean(parts))
