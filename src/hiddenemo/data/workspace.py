"""`Workspace`: the one reader of a workspace's description, `WORK/dataset.json` + `WORK/manifest.parquet`.

Every stage that needs labels, splits or array names takes one. It reads both files once and hands
out what the stages ask for:

- `truth()`: every video with `y`, its class as the stages count it (two classes: 1 = the positive
  class, 0 = the other; more: the class index), <NA> when unlabeled;
- `training_split()`: the labeled training videos with their `label` (counted the same way) and
  every other video WITHOUT a label column — the one place training labels come from, so nothing
  downstream (training, fold cutting, epoch and threshold choice, teacher calibration) can see a test
  label even by mistake;
- `rows(split)`, `text_array(encoder_id)`.

The manifest's own `label` column stays the class index into `classes` (docs/contracts.md); only
what the Workspace hands out is counted "1 = positive".
"""
from __future__ import annotations

from functools import cached_property
from pathlib import Path

import pandas as pd

from hiddenemo.data.manifest import DatasetInfo, read_manifest
from hiddenemo.data.store import Store, array_name
from hiddenemo.errors import UserError

TRAIN_SPLIT = "train"


class Workspace:
    """The workspace at `work`; its files are read on first use and kept."""

    def __init__(self, work: str | Path):
        self.work = Path(work)

    @classmethod
    def of(cls, work: "str | Path | Workspace") -> "Workspace":
        """`work` itself when it is already a Workspace (so one read serves a whole command)."""
        return work if isinstance(work, Workspace) else cls(work)

    # ---- what the files say -----------------------------------------------------------------------
    @cached_property
    def info(self) -> DatasetInfo:
        return DatasetInfo.load(self.work)

    @cached_property
    def _manifest(self) -> pd.DataFrame:
        return read_manifest(self.work)

    @property
    def manifest(self) -> pd.DataFrame:
        """The manifest (a copy: callers may add columns without changing what others see)."""
        return self._manifest.copy()

    @property
    def classes(self) -> list[str]:
        return list(self.info.classes)

    @property
    def is_binary(self) -> bool:
        return len(self.info.classes) == 2

    @property
    def positive(self) -> str:
        """The positive class's name (two classes)."""
        return self.info.classes[self.info.positive_index]

    @property
    def negative(self) -> str:
        return self.info.classes[1 - self.info.positive_index]

    @property
    def store(self) -> Store:
        return Store(self.work)

    # ---- what the stages ask for ------------------------------------------------------------------
    def counted(self, labels: pd.Series) -> pd.Series:
        """Class indices as the stages count them: two classes → 1 for the positive class, 0 for the
        other; more → unchanged. Missing labels stay <NA>."""
        labels = labels.astype("Int64")
        if not self.is_binary:
            return labels
        return (labels == self.info.positive_index).astype("Int64").mask(labels.isna())

    def class_name(self, y: int) -> str:
        """The name of a counted class (`counted`'s inverse)."""
        if not self.is_binary:
            return self.info.classes[int(y)]
        return self.positive if int(y) == 1 else self.negative

    def truth(self) -> pd.DataFrame:
        """The manifest with `y` (see `counted`) beside the stored `label`."""
        manifest = self.manifest
        manifest["y"] = self.counted(manifest["label"])
        return manifest

    def training_split(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(labeled: video_id, label, subject_id — split `train` with a label, `label` counted as the
        stages count it; others: video_id, split, subject_id — every other video, its label dropped)."""
        manifest = self._manifest
        is_labeled_train = (manifest["split"] == TRAIN_SPLIT) & manifest["label"].notna()
        labeled = manifest.loc[is_labeled_train, ["video_id", "label", "subject_id"]].reset_index(drop=True)
        labeled["label"] = self.counted(labeled["label"]).astype(int)
        others = manifest.loc[~is_labeled_train, ["video_id", "split", "subject_id"]].reset_index(drop=True)
        if len(labeled) == 0:
            raise UserError(f"{self.work}: the manifest has no labeled videos in split `train`; nothing to train on")
        counts = labeled["label"].value_counts()
        if len(counts) < 2:
            raise UserError(f"training needs both classes among the labeled `train` videos; found "
                            f"{ {self.class_name(c): int(n) for c, n in counts.items()} }")
        return labeled, others

    def rows(self, split: str) -> pd.DataFrame:
        """The manifest rows of one split."""
        return self._manifest.loc[self._manifest["split"] == split].reset_index(drop=True)

    def text_array(self, encoder_id: str | None = None, video_ids=None) -> str:
        """The store's array name for text embeddings, `text.<encoder_id>`; with no id given, the one text
        encoder present among `video_ids` (default: every video)."""
        if encoder_id:
            return array_name("text", encoder_id)
        store = self.store
        ids = self._manifest["video_id"] if video_ids is None else video_ids
        names = {p.stem for vid in ids for p in store.video_dir(vid).glob("text.*.npy")}
        if len(names) != 1:
            raise UserError(f"{store.root}: found text arrays {sorted(names) or 'none'}; "
                            + ("run `hiddenemo teach` and `hiddenemo embed` first" if not names
                               else "say which with --text_encoder"))
        return names.pop()
