"""A folder of videos plus a labels CSV: the path a user with their own data takes.

The CSV has a header and columns `video_id,label` and optionally `split` and `subject_id`;
`video_id` is the video's file name without its extension. Rules:

- a video without a label row, or with a blank label, is unlabeled (the teacher's target set);
- a label row without a video is an error naming it (`missing_videos="warn"` drops it instead);
- labels may be any two or more names; for two, `positive` says which is the positive class and
  defaults to the rarer one (the one a detector looks for; ties: the later name alphabetically), and
  `pleasant` names the class the rule-based teacher's cues point to (unknown when not given);
- a missing or blank split is `train` for a labeled video and `test` for an unlabeled one;
- without labels at all (no CSV, or every label blank) the workspace is unlabeled: extract, teach,
  embed and `apply` work on it, `train` says it needs labels. Its class names, if given, word the
  teachers' texts.
"""
from __future__ import annotations

import logging
import re
import unicodedata
from pathlib import Path

import pandas as pd

from hiddenemo.data.imigue import SPLITS, _read_csv
from hiddenemo.data.manifest import VALENCES, DatasetInfo
from hiddenemo.data.ids import check_video_id
from hiddenemo.errors import UserError

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv")


def find_videos(directory: Path, safe_ids: bool = False) -> dict[str, Path]:
    """video_id -> file for the videos directly in `directory` (not its subfolders). A file name that
    cannot be an id is an error naming every such file, or, with `safe_ids`, gets an id derived from
    its name (the manifest's path keeps the file's own name)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise UserError(f"video folder {directory} does not exist or is not a folder")
    files = [p for p in sorted(directory.iterdir())
             if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS and not p.name.startswith(".")]
    unusable = [p for p in files if not _usable_id(p.stem)]
    if unusable and not safe_ids:
        examples = ", ".join(f"{p.name!r} -> {derive_id(p.stem)}" for p in unusable[:10])
        raise UserError(f"{directory}: {len(unusable)} file name(s) cannot be video ids (letters, digits, '.', '_' "
                        f"and '-' only): {examples}{', ...' if len(unusable) > 10 else ''}; rename them, or pass "
                        "--safe_ids true to use those derived ids (the manifest keeps each file's own path)")
    found: dict[str, list[Path]] = {}
    for path in files:
        found.setdefault(path.stem if _usable_id(path.stem) else derive_id(path.stem), []).append(path)
    clashes = {k: [p.name for p in v] for k, v in found.items() if len(v) > 1}
    if clashes:
        raise UserError(f"{directory}: several files share a video id (name without extension"
                        f"{', or the id derived from it' if unusable else ''}): {dict(list(clashes.items())[:5])}; "
                        "keep one file per id")
    if unusable:
        log.info("%d video id(s) derived from file names: %s", len(unusable),
                 ", ".join(f"{p.name!r} -> {derive_id(p.stem)}" for p in unusable[:10]))
    return {k: v[0] for k, v in found.items()}


def derive_id(name: str) -> str:
    """A usable video id from a file name: accents dropped, every run of other characters one '_'."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    derived = re.sub(r"[^A-Za-z0-9._-]+", "_", ascii_name)
    derived = re.sub(r"\.{2,}", ".", derived).strip("._-")[:200]
    return derived or "video"


def _usable_id(name: str) -> bool:
    try:
        check_video_id(name)
    except ValueError:
        return False
    return True


def read_labels(path: Path) -> pd.DataFrame:
    """`video_id, label[, split, subject_id]` with blanks as <NA>; bad ids and duplicates named."""
    df = _read_csv(path, "labels CSV")
    missing = [c for c in ("video_id", "label") if c not in df.columns]
    if missing:
        raise UserError(f"{path} lacks column(s) {missing}: the header must be "
                        "video_id,label[,split,subject_id] (video_id = file name without extension)")
    df = df.replace("", pd.NA)
    no_id = df.index[df["video_id"].isna()]
    if len(no_id):
        raise UserError(f"{path}: empty video_id on line(s) {[int(i) + 2 for i in no_id[:10]]}")
    named = repeated_lines(df["video_id"])
    if named:
        raise UserError(f"{path}: video id(s) listed more than once: {named}; keep one row each")
    if "split" in df.columns:
        bad = sorted(set(df["split"].dropna()) - set(SPLITS))
        if bad:
            raise UserError(f"{path}: split must be one of {list(SPLITS)} (or blank), found {bad}")
    keep = [c for c in ("video_id", "label", "split", "subject_id") if c in df.columns]
    return df[keep]


def repeated_lines(ids: pd.Series) -> str:
    """The ids that occur more than once with their CSV line numbers (row 0 is line 2, after the
    header), e.g. "'a' (lines 3, 7)"; empty when every id is unique."""
    repeated = ids[ids.duplicated(keep=False)]
    lines = {vid: [int(i) + 2 for i in rows.index] for vid, rows in repeated.groupby(repeated, sort=False)}
    return ", ".join(f"{vid!r} (lines {', '.join(map(str, at))})" for vid, at in list(lines.items())[:10])


def choose_classes(labels: pd.Series, positive: str | None) -> tuple[list[str], str | None]:
    """Class names in index order and the positive one. Binary: [negative, positive]; more classes:
    sorted names, positive only when given."""
    counts = labels.dropna().value_counts()
    names = sorted(counts.index)
    if not names:
        return [], positive                   # an unlabeled workspace
    if len(names) < 2:
        raise UserError(f"the labels CSV has {len(names)} class name(s) {names}: a task needs two or more")
    spellings: dict[str, list[str]] = {}
    for name in names:
        spellings.setdefault(name.casefold(), []).append(name)
    clashes = [group for group in spellings.values() if len(group) > 1]
    if clashes:     # "Win" and "win" are one class to the user; as two they would split it silently
        raise UserError(f"the labels CSV spells a class in more than one way: {clashes}; "
                        "write each class name the same way (names are case-sensitive)")
    if positive is not None and positive not in names:
        raise UserError(f"positive class {positive!r} is not among the labels {names}")
    if len(names) > 2:
        return names, positive
    if positive is None:
        # The rarer class; on a tie the later name, so the choice never depends on row order.
        rarest = counts.min()
        positive = max(n for n in names if counts[n] == rarest)
    negative = next(n for n in names if n != positive)
    return [negative, positive], positive


def workspace_classes(labels: pd.Series, positive: str | None, classes: list[str] | None) -> tuple[list[str], str | None]:
    """The workspace's class names and positive one: from the labels (`choose_classes`), or, when no
    label is given, from `classes` = [negative, positive] (names the teachers' texts use)."""
    named, positive = choose_classes(labels, positive)
    if classes and named and named != classes:
        raise UserError(f"--classes {classes} and the labels' classes {named} differ; give one of them")
    if not named and classes:
        if len(classes) != 2 or (positive is not None and positive != classes[1]):
            raise UserError(f"--classes takes two names, [negative, positive]; got {classes}")
        named, positive = list(classes), classes[1]
    return named, positive


def valence(classes: list[str], positive: str | None, pleasant: str | None) -> str | None:
    """`DatasetInfo.positive_valence` from the name of the pleasant class: it follows the class name,
    so a relabeling that makes the other class positive cannot invert the rule-based teacher."""
    if pleasant is None:
        return None
    if len(classes) != 2 or pleasant not in classes:
        raise UserError(f"--pleasant {pleasant!r} must name one of the two classes, and the labels have {classes}")
    return VALENCES[0] if pleasant == positive else VALENCES[1]


def folder_table(videos: dict[str, Path], labels: pd.DataFrame | None, positive: str | None = None,
                 missing_videos: str = "error", pleasant: str | None = None,
                 classes: list[str] | None = None) -> tuple[pd.DataFrame, DatasetInfo]:
    """Manifest rows (fps and n_frames still unknown) and the dataset description. `labels` None (or
    all blank): an unlabeled workspace, whose `classes` [negative, positive] may still be named."""
    if labels is None:
        labels = pd.DataFrame({"video_id": pd.Series(dtype="string"), "label": pd.Series(dtype="string")})
    # A labels row may name a video by its file name even when its id was derived from it.
    by_stem = {path.stem: video_id for video_id, path in videos.items()}
    labels = labels.assign(video_id=labels["video_id"].map(lambda v: by_stem.get(v, v)))
    if missing_videos not in ("error", "warn"):
        raise UserError(f"missing_videos must be 'error' or 'warn', not {missing_videos!r}")
    orphans = sorted(set(labels["video_id"]) - set(videos))
    if orphans:
        message = (f"{len(orphans)} label row(s) have no video file: {orphans[:10]} (a video id is "
                   "its file name without extension)")
        if missing_videos == "error":
            raise UserError(message + "; fix the ids, or pass --missing_videos warn to drop those rows")
        log.warning("%s; dropped", message)
        labels = labels[~labels["video_id"].isin(orphans)]
    if not videos:
        raise UserError("no video files found (extensions: " + ", ".join(VIDEO_EXTENSIONS) + ")")
    classes, positive = workspace_classes(labels["label"], positive, classes)
    df = pd.DataFrame({"video_id": sorted(videos)})
    df = df.merge(labels, on="video_id", how="left")
    df["path"] = df["video_id"].map(lambda v: str(videos[v].resolve()))
    df["label"] = df["label"].map({name: i for i, name in enumerate(classes)}).astype("Int64")
    default_split = df["label"].notna().map({True: "train", False: "test"})
    df["split"] = df["split"].fillna(default_split) if "split" in df.columns else default_split
    if "subject_id" not in df.columns:
        df["subject_id"] = pd.NA
    df["fps"], df["n_frames"], df["source"] = float("nan"), pd.NA, "folder"
    info = DatasetInfo(name="folder", classes=classes, positive=positive,
                       positive_valence=valence(classes, positive, pleasant))
    return df, info
