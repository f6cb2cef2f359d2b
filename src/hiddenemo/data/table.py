"""A workspace from a labels table alone, no video files: `hiddenemo dataset table`.

For data whose features or teacher texts come from elsewhere (a colleague's VLM run, a provider's
batch job, texts published with a paper): the CSV is the folder adapter's, `video_id,label[,split,
subject_id]`, and the same rules hold (`hiddenemo.data.folder`): blank labels are unlabeled target
videos, classes come from the labels (two: [negative, positive], the rarer one positive unless
`positive` names it; more: sorted names), a missing split is `train` for a labeled video and `test`
for an unlabeled one. The manifest's `path` stays empty: the stages that need a video (`extract`,
the VLM teachers) say so per video, and the `text` modality (`teach --teacher import`, `embed`)
works as usual.

A video id that cannot be a store directory name (spaces, slashes, accents) is an error naming its
line, or, with `safe_ids`, gets an id derived from it; the manifest then keeps the id as written in
the column `source_id`, so an imported teacher file may use either.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from hiddenemo.data.folder import _usable_id, derive_id, read_labels, repeated_lines, valence, workspace_classes
from hiddenemo.data.manifest import DatasetInfo, write_manifest
from hiddenemo.errors import UserError

SOURCE = "table"


def table_workspace(labels_csv: Path, positive: str | None = None, pleasant: str | None = None,
                    classes: list[str] | None = None, safe_ids: bool = False) -> tuple[pd.DataFrame, DatasetInfo]:
    """Manifest rows (no path, fps or frame count) and the dataset description of `labels_csv`."""
    labels = read_labels(labels_csv)
    if labels.empty:
        raise UserError(f"{labels_csv} has no rows: list one video per line (video_id,label[,split,subject_id])")
    labels = _safe(labels, labels_csv, safe_ids)
    classes, positive = workspace_classes(labels["label"], positive, classes)
    df = labels.reset_index(drop=True)
    df["label"] = df["label"].map({name: i for i, name in enumerate(classes)}).astype("Int64")
    default_split = df["label"].notna().map({True: "train", False: "test"})
    df["split"] = df["split"].fillna(default_split) if "split" in df.columns else default_split
    if "subject_id" not in df.columns:
        df["subject_id"] = pd.NA
    df["path"], df["fps"], df["n_frames"], df["source"] = pd.NA, float("nan"), pd.NA, SOURCE
    info = DatasetInfo(name=SOURCE, classes=classes, positive=positive,
                       positive_valence=valence(classes, positive, pleasant))
    return df.sort_values("video_id", kind="stable").reset_index(drop=True), info


def write_table_workspace(labels_csv: Path, out: Path, positive: str | None = None, pleasant: str | None = None,
                          classes: list[str] | None = None, safe_ids: bool = False) -> tuple[pd.DataFrame, DatasetInfo]:
    """Workspace `out` (dataset.json and manifest.parquet) from `labels_csv`; returns what it wrote."""
    rows, info = table_workspace(labels_csv, positive, pleasant, classes, safe_ids)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    info.save(out)
    write_manifest(out, rows)
    return rows, info


def _safe(labels: pd.DataFrame, path: Path, safe_ids: bool) -> pd.DataFrame:
    """Ids checked (CSV line numbers named); with `safe_ids` unusable ones derived, `source_id` kept."""
    bad = labels.index[~labels["video_id"].map(_usable_id)]
    if not len(bad):
        return labels
    examples = ", ".join(f"line {int(i) + 2}: {labels.at[i, 'video_id']!r} -> {derive_id(labels.at[i, 'video_id'])}"
                         for i in bad[:10])
    if not safe_ids:
        raise UserError(f"{path}: {len(bad)} video id(s) cannot be ids (letters, digits, '.', '_' and '-' only): "
                        f"{examples}{', ...' if len(bad) > 10 else ''}; rename them, or pass --safe_ids true to "
                        "use those derived ids (the manifest keeps each id as written in source_id)")
    derived = labels["video_id"].where(labels["video_id"].map(_usable_id), labels["video_id"].map(derive_id))
    clash = repeated_lines(derived)
    if clash:
        raise UserError(f"{path}: derived ids clash: {clash}; rename those rows so that each keeps its own id")
    return labels.assign(source_id=labels["video_id"], video_id=derived)
