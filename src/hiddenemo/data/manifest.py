"""The manifest, `WORK/manifest.parquet`: one row per video, the table every stage starts from.

Labels are class indices into `DatasetInfo.classes` (`WORK/dataset.json`); for a binary task
index 1 is the positive class. A missing label (`<NA>`) marks an unlabeled video, not an error.
"""
from __future__ import annotations

import io
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from hiddenemo.data.claims import exclusive
from hiddenemo.data.ids import check_video_id
from hiddenemo.data.store import atomic_write_bytes, atomic_write_text
from hiddenemo.errors import UserError

COLUMNS = {
    "video_id": "string",
    "path": "string",        # video file, nullable (iMiGUE without videos)
    "label": "Int64",        # class index, nullable = unlabeled
    "split": "string",       # train / val / test / unused
    "subject_id": "string",  # nullable: who is in the video (for grouped folds)
    "fps": "float64",        # nullable until extraction has probed the video
    "n_frames": "Int64",     # nullable until known
    "source": "string",      # which adapter made the row
}


class ManifestError(UserError, ValueError):
    """The manifest or a labels file is unusable; the message names the file and the fix (a
    UserError, so the CLI prints it without a traceback)."""


VALENCES = ("pleasant", "unpleasant")


@dataclass
class DatasetInfo:
    """What a workspace holds: its class names and which of them is positive."""
    name: str
    classes: list[str]
    positive: str | None = None
    protocol: str | None = None
    extra: dict = field(default_factory=dict)
    positive_valence: str | None = "pleasant"
    """What the positive class stands for, to the rule-based `behaviour` teacher: `pleasant` (composed,
    nothing to hide: iMiGUE's win) or `unpleasant` (lose, stressed, ...); its rules point that way.
    None: not known (a folder workspace made without `--pleasant CLASS`)."""

    @property
    def positive_index(self) -> int:
        return self.classes.index(self.positive) if self.positive is not None else len(self.classes) - 1

    @property
    def pleasant(self) -> str | None:
        """The name of the pleasant class of a two-class task, when the workspace says which it is."""
        if self.positive_valence is None or len(self.classes) != 2:
            return None
        positive = self.classes[self.positive_index]
        return positive if self.positive_valence == "pleasant" else next(c for c in self.classes if c != positive)

    def save(self, work: Path) -> None:
        atomic_write_text(Path(work) / "dataset.json", json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, work: Path) -> "DatasetInfo":
        path = Path(work) / "dataset.json"
        if not path.exists():
            raise ManifestError(f"{path} is missing: create the workspace with `hiddenemo dataset ...` first")
        return cls(**json.loads(path.read_text()))


def normalise(df: pd.DataFrame) -> pd.DataFrame:
    """Coerce to the manifest schema; refuse duplicate or unsafe ids."""
    missing = [c for c in ("video_id", "split") if c not in df.columns]
    if missing:
        raise ManifestError(f"manifest lacks column(s) {missing}")
    df = df.copy()
    for col, dtype in COLUMNS.items():
        if col not in df.columns:
            df[col] = pd.Series(index=df.index, dtype=dtype)
        elif dtype == "float64":
            df[col] = df[col].astype("Float64").astype(dtype)     # pd.NA in an object column -> NaN
        else:
            df[col] = df[col].astype(dtype)
    df["video_id"].map(check_video_id)
    dupes = df["video_id"][df["video_id"].duplicated()].unique().tolist()
    if dupes:
        raise ManifestError(f"duplicate video ids in the manifest: {dupes[:10]}")
    extra = [c for c in df.columns if c not in COLUMNS]
    return df[list(COLUMNS) + extra].reset_index(drop=True)


def write_manifest(work: str | Path, df: pd.DataFrame) -> Path:
    path = Path(work) / "manifest.parquet"
    buf = io.BytesIO()
    normalise(df).to_parquet(buf, index=False)
    atomic_write_bytes(path, buf.getvalue())
    return path


def read_manifest(work: str | Path) -> pd.DataFrame:
    path = Path(work) / "manifest.parquet"
    if not path.exists():
        raise ManifestError(f"{path} is missing: create the workspace with `hiddenemo dataset ...` first")
    try:
        return normalise(pd.read_parquet(path))
    except (ValueError, OSError) as e:      # an unreadable file, or rows that break the schema
        raise ManifestError(f"{path}: {e}; fix it or re-create it with `hiddenemo dataset ...`") from e


def select_videos(manifest: pd.DataFrame, only: list | None, work: str | Path) -> pd.DataFrame:
    """The manifest rows of the video ids `only` (all rows when None); ids written as numbers on the
    command line (`--videos '[298,371]'`) count as their text; an id not in the manifest is an error."""
    if only is None:
        return manifest
    only = [str(v) for v in only]
    unknown = sorted(set(only) - set(manifest["video_id"]))
    if unknown:
        raise ManifestError(f"video ids not in {Path(work) / 'manifest.parquet'}: {unknown[:10]}")
    return manifest[manifest["video_id"].isin(only)]


def update_manifest(work: str | Path, rows: pd.DataFrame) -> pd.DataFrame:
    """Overwrite the given columns for the given video ids (e.g. fps and n_frames after probing).
    Read, change and write happen under the manifest's lock, so two processes updating different
    videos at once both keep their change."""
    with exclusive(Path(work) / "manifest.parquet"):
        return _update(work, rows)


def _update(work: str | Path, rows: pd.DataFrame) -> pd.DataFrame:
    df = read_manifest(work).set_index("video_id")
    rows = rows.set_index("video_id")
    unknown = rows.index.difference(df.index)
    if len(unknown):
        raise ManifestError(f"cannot update unknown video ids {list(unknown)[:10]}")
    for col in rows.columns:
        if col not in df.columns:
            df[col] = pd.NA
        df.loc[rows.index, col] = rows[col]
    out = df.reset_index()
    write_manifest(work, out)
    return normalise(out)
