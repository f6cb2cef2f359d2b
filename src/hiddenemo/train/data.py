"""A torch Dataset over the workspace store: one sample = one sampling of one video.

Arrays are opened memory-mapped, so drawing 800 of 20,000 rows reads only those rows. Training
draws fresh rows every epoch (the paper's resampling augmentation), seeded by (seed, video, draw)
through `hiddenemo.data.sampling.video_rng`, so a run is reproducible in any order and after a
resume. Evaluation gives each video `votes` samplings: the fixed one plus seeded random draws.

A sample is a dict with the batch keys the models read (`pose`, `pose_point_mask`, `pose_mask`,
`frames`, `frames_mask`, `text`, `events`, `events_mask`, `<modality>_present`; for a modality read
by a pooled encoder, `<modality>_stats` instead of its sequence) plus `target` (a number in [0, 1]
for two classes; for more, the row's class distribution from its columns `target_0` ... `target_<C-1>`),
`weight` and `index` (the video's row in the table). A modality a video lacks is zeros with
`<modality>_present = False`. For an encoder that reads the keypoints' bound patches (`pose-patch`),
`pose_patch` (N, 137, P) and `pose_patch_mask` (N, 137) too: each sampled frame gets the patch row of
the nearest embedded frame, none when that is farther than the embedding stride. An encoder may read
another array for its modality (`frames-xclip`: `frames_xclip` and `frames_xclip_idx`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from hiddenemo.data.keypoints import anyone_seen, checked_keypoints, keypoint_features
from hiddenemo.data.layout import N_KEYPOINTS
from hiddenemo.data.pooled import PooledFeatures, video_timings
from hiddenemo.data.sampling import gap_in_rows, sample_indices, video_rng
from hiddenemo.data.store import Store, StoreError, array_name
from hiddenemo.errors import UserError
from hiddenemo.train.config import SamplingConfig, TrainConfig

SEQUENCE_MODALITIES = ("pose", "frames", "events")


def encoder_arrays(encoders: dict[str, str]) -> dict[str, str]:
    """modality -> the array its encoder reads instead of the modality's own, where it does."""
    from hiddenemo.models.registry import reads_array

    return {m: reads_array(name) for m, name in encoders.items() if reads_array(name)}


def nearest_rows(frames_idx: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For raw frames idx (N,): the row of the nearest embedded frame in frames_idx (sorted) and whether
    it lies within the embedding stride (the median step between embedded frames)."""
    if len(frames_idx) == 0:
        return np.zeros(len(idx), np.int64), np.zeros(len(idx), bool)
    right = np.clip(np.searchsorted(frames_idx, idx), 0, len(frames_idx) - 1)
    left = np.maximum(right - 1, 0)
    rows = np.where(np.abs(frames_idx[left] - idx) <= np.abs(frames_idx[right] - idx), left, right)
    stride = np.median(np.diff(frames_idx)) if len(frames_idx) > 1 else 1
    return rows, np.abs(frames_idx[rows] - idx) <= stride


def videos_without_input(store: Store, video_ids: list[str], modalities: list[str], text_encoder: str) -> list[str]:
    """The videos with nothing in any of `modalities`: no array, an empty one, or keypoints never seen
    (judged on up to 256 evenly spaced rows, read memory-mapped). A model's output for them is its
    answer to no input at all."""
    def has_input(video_id: str, modality: str) -> bool:
        name = array_name(modality, text_encoder)
        if not store.has(video_id, name):
            return False
        array = store.load(video_id, name)
        return anyone_seen(array) if modality == "pose" else len(array) > 0
    return [v for v in video_ids if not any(has_input(v, m) for m in modalities)]


def modality_dims(store: Store, video_ids: list[str], modalities: list[str], sampling: SamplingConfig,
                  text_encoder: str, arrays: dict[str, str] | None = None) -> dict[str, int]:
    """Feature width of each modality, read from the sidecars; refuses a modality no video has."""
    dims = {}
    for modality in modalities:
        if modality == "pose":
            dims["pose"] = 2 + 2 * len(sampling.offsets)
            name = "pose"
        else:
            name = array_name(modality, text_encoder, arrays)
        for vid in video_ids:
            meta = store.meta(vid, name)
            if meta is not None and store.path(vid, name).exists():
                dims.setdefault(modality, int(meta["shape"][-1]))
                break
        else:
            have = sorted({p.stem for p in store.root.glob("*/*.npy")}) if store.root.exists() else []
            maker = {"pose": "`hiddenemo extract` (or `dataset imigue --openpose`)",
                     "frames": "`hiddenemo extract`" + (" --extract.frames xclip" if name != "frames" else ""),
                     "text": "`hiddenemo teach` then `hiddenemo embed`",
                     "events": "`hiddenemo dataset imigue` (timed annotations; other datasets have none)"}[modality]
            raise UserError(f"no video in {store.work} has the `{name}` array needed by modality "
                            f"`{modality}` (arrays present: {have or 'none'}); make it with {maker}, or drop "
                            "the modality from model.modalities")
    return dims


def pooled_inputs(work: Path, manifest: pd.DataFrame, config: TrainConfig, event_groups: dict | None,
                  encoders: dict[str, list[str]]) -> dict[str, PooledFeatures]:
    """The pooled statistics of every modality that one of its `encoders` reads pooled, over all the
    workspace's videos (a person's baseline is taken across all of theirs: label-free)."""
    from hiddenemo.models.registry import reads_pooled

    videos = video_timings(manifest)
    pooled = {m: PooledFeatures(work, m, videos, events_features=tuple(config.pooled.events),
                                baseline=config.pooled.person_baseline, baseline_minutes=config.pooled.baseline_minutes,
                                event_groups=event_groups)
              for m, names in encoders.items() if any(reads_pooled(n) for n in names)}
    for features in pooled.values():
        if features.transductive:
            # Here, once: the fits (each in its worker process) get the vectors with them, and the
            # warning about people with one video is logged once, not by every fit.
            features.subject_means()
    return pooled


def input_dims(store: Store, video_ids: list[str], encoders: dict[str, str], config: TrainConfig,
               pooled: dict[str, PooledFeatures]) -> dict[str, int]:
    """Input width of each modality for the encoder named for it: the pooled vector's for a pooled
    encoder, the sequence's otherwise."""
    from hiddenemo.models.registry import reads_patches, reads_pooled

    sequence = [m for m, name in encoders.items() if not reads_pooled(name)]
    dims = modality_dims(store, video_ids, sequence, config.sampling, config.model.text_encoder,
                         encoder_arrays(encoders))
    if any(reads_patches(name) for name in encoders.values()) and \
            not any(store.has(v, "pose_patch") for v in video_ids):
        raise UserError(f"encoder {encoders['pose']} reads keypoints bound to DINOv2 patches, and no video in "
                        f"{store.work} has them; extract with `hiddenemo extract --extract.patches_dim 16`")
    return {m: pooled[m].width if reads_pooled(name) else dims[m] for m, name in encoders.items()}


def target_rows(labeled: pd.DataFrame, n_classes: int) -> pd.DataFrame:
    """`labeled` (label = class as counted) with its training targets and weight 1: `target` = the 0/1
    label for two classes; one-hot `target_<k>` columns for more."""
    y = labeled["label"].to_numpy()
    if n_classes <= 2:
        return labeled.assign(target=y.astype(np.float32), weight=1.0)
    onehot = np.eye(n_classes, dtype=np.float32)[y.astype(int)]
    return labeled.assign(**{f"target_{k}": onehot[:, k] for k in range(n_classes)}, weight=1.0)


def target_columns(rows: pd.DataFrame) -> list[str]:
    """`target_0` ... `target_<C-1>` when the rows carry class distributions, else []."""
    columns = []
    while f"target_{len(columns)}" in rows:
        columns.append(f"target_{len(columns)}")
    return columns


def row_targets(rows: pd.DataFrame) -> np.ndarray:
    """(n,) targets of a two-class task, or (n, C) class distributions; zeros when the rows have none."""
    columns = target_columns(rows)
    if columns:
        return rows[columns].to_numpy(np.float32)
    return rows["target"].to_numpy(np.float32) if "target" in rows else np.zeros(len(rows), np.float32)


class VideoDataset(Dataset):
    """Samplings of the videos in `rows` (columns video_id, target, weight).

    train=True: `resamples` random draws per video per epoch (call `set_epoch` before each epoch).
    train=False: `sampling.votes` draws per video, the same every time.
    `leave_out` modalities are given as absent for every video (zeros, present=False).
    """

    def __init__(self, work: Path, rows: pd.DataFrame, modalities: list[str], sampling: SamplingConfig,
                 *, train: bool, seed: int, dims: dict[str, int], text_encoder: str = "minilm",
                 resamples: int = 1, pooled: dict[str, PooledFeatures] | None = None, train_window: float = 1.0,
                 leave_out: tuple[str, ...] = (), encoders: dict[str, str] | None = None):
        from hiddenemo.models.registry import reads_patches

        self.store = Store(work)
        self.video_ids = rows["video_id"].astype(str).tolist()
        self.targets = row_targets(rows)
        self.weights = rows["weight"].to_numpy(np.float32) if "weight" in rows else np.ones(len(rows), np.float32)
        self.modalities, self.sampling, self.train, self.seed = list(modalities), sampling, train, seed
        self.dims, self.text_encoder = dims, text_encoder
        self.pooled, self.train_window = pooled or {}, float(train_window)
        self.draws = resamples if train else max(1, sampling.votes)
        self.epoch = 0
        self.leave_out = set(leave_out)
        self._cache: dict[tuple[str, str], np.ndarray | None] = {}
        self.arrays = encoder_arrays(encoders or {})
        self.patches = reads_patches((encoders or {}).get("pose", ""))
        if self.patches:      # the stored width, for the zeros of a video without patches
            metas = (self.store.meta(v, "pose_patch") for v in self.video_ids)
            self.patch_width = next((int(m["shape"][-1]) for m in metas if m), 16)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.video_ids) * self.draws

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        index, draw = i % len(self.video_ids), i // len(self.video_ids)
        vid = self.video_ids[index]
        sample = {"target": self.targets[index], "weight": self.weights[index], "index": np.int64(index)}
        for modality in self.modalities:
            sample.update(self._modality(vid, modality, draw))
        return sample

    # One modality of one video, sampled; zeros and present=False when the video lacks it.
    def _modality(self, vid: str, modality: str, draw: int) -> dict[str, np.ndarray]:
        if modality in self.pooled:
            return self._pooled(vid, modality, draw)
        array = None if modality in self.leave_out else self._array(vid, modality)
        if modality == "text":
            present = array is not None
            vec = np.asarray(array, np.float32).reshape(-1) if present else np.zeros(self.dims["text"], np.float32)
            return {"text": vec, "text_present": np.bool_(present)}
        n = {"pose": self.sampling.n_pose, "frames": self.sampling.n_frames, "events": self.sampling.n_events}[modality]
        n_rows = 0 if array is None else len(array)
        idx, valid = self._indices(vid, modality, n_rows, n, draw)
        if modality == "pose":
            if n_rows:
                feats, point_ok = keypoint_features(checked_keypoints(array), idx, tuple(self.sampling.offsets))
            else:
                feats = np.zeros((n, N_KEYPOINTS, self.dims["pose"]), np.float32)
                point_ok = np.zeros((n, N_KEYPOINTS), bool)
            point_ok &= valid[:, None]
            feats[~valid] = 0
            out = {"pose": feats, "pose_point_mask": point_ok, "pose_mask": valid, "pose_present": np.bool_(valid.any())}
            return {**out, **self._patches(vid, idx, point_ok)} if self.patches else out
        rows = np.asarray(array[idx], np.float32) if n_rows else np.zeros((n, self.dims[modality]), np.float32)
        rows[~valid] = 0
        rows = np.nan_to_num(rows)
        return {modality: rows, f"{modality}_mask": valid, f"{modality}_present": np.bool_(valid.any())}

    def _patches(self, vid: str, idx: np.ndarray, point_ok: np.ndarray) -> dict[str, np.ndarray]:
        """The bound patch features at the sampled pose frames, from the nearest embedded frame."""
        patch = None if "pose" in self.leave_out else self._array(vid, "pose_patch")
        if patch is None or not len(patch):
            return {"pose_patch": np.zeros(point_ok.shape + (self.patch_width,), np.float32),
                    "pose_patch_mask": np.zeros_like(point_ok)}
        rows, near = nearest_rows(np.asarray(self._array(vid, "frames_idx")), idx)
        feats = np.asarray(patch[rows], np.float32)                       # (N, 137, P), NaN = not bound
        bound = np.isfinite(feats).all(-1) & near[:, None] & point_ok
        return {"pose_patch": np.where(bound[..., None], feats, 0).astype(np.float32), "pose_patch_mask": bound}

    def _pooled(self, vid: str, modality: str, draw: int) -> dict[str, np.ndarray]:
        """The video's statistics: over a random window in training (augmentation), whole at inference."""
        window = None
        if self.train and self.train_window < 1.0:
            rng = video_rng(self.seed, f"{vid}/{modality}/window", self.epoch * self.draws + draw)
            share = rng.uniform(self.train_window, 1.0)
            start = rng.uniform(0.0, 1.0 - share)
            window = (start, start + share)
        vec = None if modality in self.leave_out else self.pooled[modality].vector(vid, window)
        present = vec is not None
        vec = np.nan_to_num(np.asarray(vec, np.float32)) if present else np.zeros(self.dims[modality], np.float32)
        return {f"{modality}_stats": vec, f"{modality}_present": np.bool_(present)}

    def _indices(self, vid: str, modality: str, n_rows: int, n: int, draw: int) -> tuple[np.ndarray, np.ndarray]:
        gap = 1
        if modality == "frames" and n_rows:
            gap = gap_in_rows(self._array(vid, self.arrays.get("frames", "frames") + "_idx"), self.sampling.min_frame_gap)
        if self.train:
            # Every (epoch, resample) pair is its own draw, apart from the voting draws' stream.
            rng = video_rng(self.seed, f"{vid}/{modality}/train", self.epoch * self.draws + draw)
            return sample_indices(n_rows, n, train=True, rng=rng, gap=gap)
        if draw == 0:
            return sample_indices(n_rows, n, train=False, gap=gap)
        # Draw d of `voting_samples(..., video_id=f"{vid}/{modality}")`, without making the others.
        rng = video_rng(self.seed, f"{vid}/{modality}", draw)
        return sample_indices(n_rows, n, train=True, rng=rng, gap=gap)

    def _array(self, vid: str, modality: str) -> np.ndarray | None:
        key = (vid, modality)
        if key not in self._cache:
            try:
                self._cache[key] = self.store.load_if(vid, array_name(modality, self.text_encoder, self.arrays))
            except StoreError as e:
                raise UserError(str(e)) from e
        return self._cache[key]


def collate(samples: list[dict[str, np.ndarray]]) -> dict[str, torch.Tensor]:
    return {key: torch.from_numpy(np.stack([s[key] for s in samples])) for key in samples[0]}
