"""The iMiGUE dataset as shipped: its annotation CSV, its split table and its timed micro-gestures.

The annotation file (`labels_20200831.csv` format) has one row per micro-gesture instance:
`video_id, label_id, start_time, start_frame, end_time, end_frame, class, subject_id,
subject_gender, subject_nationality, win_or_lose`, at 25 fps. The emotion label of a video is its
`win_or_lose` (the same on all its rows); a blank one is a withheld label, so the video is
unlabeled, not broken. The split table has `video_id, subject_id, cvpr21_emotion,
miga_cross_subject`.

This module is library code: pandas and numpy only. Probing video files and ingesting OpenPose
folders is done by `hiddenemo.data.ingest`.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from hiddenemo.data.manifest import DatasetInfo
from hiddenemo.data.store import Store
from hiddenemo.errors import UserError

FPS = 25.0
CLASSES = ["lose", "win"]                 # binary: [negative, positive]
POSITIVE = "win"
PROTOCOLS = {"miga": "miga_cross_subject", "cvpr21": "cvpr21_emotion"}
SPLITS = ("train", "val", "test", "unused")
ANNOTATION_COLUMNS = ("video_id", "start_frame", "end_frame", "class", "subject_id", "win_or_lose")

# Micro-gesture classes in the column order of `events.npy`: iMiGUE's 1..31 and 99.
EVENT_CLASSES: tuple[int, ...] = (*range(1, 32), 99)
EVENTS_PRODUCER = "imigue-annotations"
EVENTS_VERSION = "1"
DEFAULT_EVENTS_RATE_HZ = 5.0

# The official micro-gesture taxonomy: class id (as in the annotation CSV) -> (figure code, name,
# body-part group). Source: Figure 2 of the iMiGUE paper (Liu et al., "iMiGUE: An Identity-free Video
# Dataset for Micro-Gesture Understanding and Emotion Analysis", CVPR 2021), (a) categories by body
# part and (c) an example of each, transcribed in `shared/data/imigue/gesture_classes.csv`; the ids are
# confirmed by the shares of Figure 2(b), which that file's share_percent (computed from the annotation
# CSV) matches to 0.01 % for every class. Class 99 is C32, illustrative body language: gestures that
# illustrate speech, not micro-gestures (30.9 % of all annotations).
TAXONOMY: dict[int, tuple[str, str, str]] = {
    1: ("C1", "turtle neck", "head"),
    2: ("C2", "bulging face, deep breath", "head"),
    3: ("C3", "touching hat", "head-hand"),
    4: ("C4", "touching or scratching head", "head-hand"),
    5: ("C5", "touching or scratching forehead", "head-hand"),
    6: ("C6", "covering face", "head-hand"),
    7: ("C7", "rubbing eyes", "head-hand"),
    8: ("C8", "touching or scratching facial parts", "head-hand"),
    9: ("C9", "touching ears", "head-hand"),
    10: ("C10", "biting nails", "head-hand"),
    11: ("C11", "touching jaw", "head-hand"),
    12: ("C12", "touching or scratching neck", "body-hand"),
    13: ("C13", "playing or adjusting hair", "body-hand"),
    14: ("C14", "buckle button, pulling shirt collar, adjusting tie", "body-hand"),
    15: ("C15", "touching or covering suprasternal notch", "body-hand"),
    16: ("C16", "scratching back", "body-hand"),
    17: ("C17", "folding arms", "body-hand"),
    18: ("C18", "dustoffing clothes", "body-hand"),
    19: ("C19", "putting arms behind body", "body-hand"),
    20: ("C20", "moving torso", "body"),
    21: ("C21", "sitting straightly", "body"),
    22: ("C22", "scratching or touching arms", "hand"),
    23: ("C23", "rubbing or holding hands", "hand"),
    24: ("C24", "crossing fingers", "hand"),
    25: ("C25", "minaret gesture", "hand"),
    26: ("C26", "playing or manipulating objects", "hand"),
    27: ("C27", "hold back arms", "hand"),
    28: ("C28", "head up", "head"),
    29: ("C29", "pressing lips", "head"),
    30: ("C30", "arms akimbo", "hand"),
    31: ("C31", "shaking shoulders", "body"),
    99: ("C32", "illustrative body language", "illustrative"),
}
GESTURE_GROUPS = ("body", "head", "hand", "body-hand", "head-hand", "illustrative")
MICRO_GESTURE_NAMES: dict[int, str] = {c: name for c, (_, name, _) in TAXONOMY.items()}
GESTURE_GROUP_OF: dict[int, str] = {c: group for c, (_, _, group) in TAXONOMY.items()}


def _read_csv(path: Path, what: str) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{what} {path} does not exist")
    try:
        # utf-8-sig drops a BOM; everything as text so ids like "007" stay what they are.
        df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as e:
        raise UserError(f"{what} {path} is not a readable CSV: {e}") from e
    df.columns = [c.strip() for c in df.columns]
    return df.apply(lambda col: col.str.strip())


def read_annotations(path: Path) -> pd.DataFrame:
    """The annotation CSV with frames and classes as integers; bad rows are named in the error."""
    df = _read_csv(path, "iMiGUE annotation CSV")
    missing = [c for c in ANNOTATION_COLUMNS if c not in df.columns]
    if missing:
        raise UserError(f"{path} lacks column(s) {missing}: expected the labels_20200831.csv format "
                        f"({', '.join(ANNOTATION_COLUMNS)}, ...)")
    for col in ("start_frame", "end_frame", "class"):
        as_int = pd.to_numeric(df[col], errors="coerce")
        bad = df.index[as_int.isna() | (as_int % 1 != 0)]
        if len(bad):
            raise UserError(f"{path}: column {col} is not a whole number on line(s) "
                            f"{[int(i) + 2 for i in bad[:10]]} (e.g. {df.loc[bad[0], col]!r})")
        df[col] = as_int.astype(np.int64)
    unknown = sorted(set(df["class"]) - set(EVENT_CLASSES))
    if unknown:
        raise UserError(f"{path}: unknown micro-gesture class(es) {unknown}; iMiGUE has 1-31 and 99")
    backwards = df.index[df["end_frame"] < df["start_frame"]]
    if len(backwards):
        raise UserError(f"{path}: end_frame before start_frame on line(s) {[int(i) + 2 for i in backwards[:10]]}")
    df["win_or_lose"] = df["win_or_lose"].str.lower()
    bad_labels = sorted(set(df["win_or_lose"]) - {"", "win", "lose"})
    if bad_labels:
        raise UserError(f"{path}: win_or_lose must be Win, Lose or blank, found {bad_labels}")
    return df


def read_splits(path: Path, protocol: str) -> pd.DataFrame:
    """`video_id, split` (and `subject_id` when given) under one protocol."""
    if protocol not in PROTOCOLS:
        raise UserError(f"unknown protocol {protocol!r}: use one of {sorted(PROTOCOLS)}")
    df = _read_csv(path, "iMiGUE split table")
    column = PROTOCOLS[protocol]
    if "video_id" not in df.columns or column not in df.columns:
        raise UserError(f"{path} needs columns video_id and {column} for protocol {protocol!r}; "
                        f"it has {list(df.columns)}")
    dupes = df["video_id"][df["video_id"].duplicated()].unique().tolist()
    if dupes:
        raise UserError(f"{path}: video id(s) listed more than once: {dupes[:10]}")
    bad = sorted(set(df[column]) - set(SPLITS))
    if bad:
        raise UserError(f"{path}: column {column} holds {bad}; allowed: {list(SPLITS)}")
    out = df[["video_id"]].assign(split=df[column])
    if "subject_id" in df.columns:
        out["subject_id"] = df["subject_id"].replace("", pd.NA)
    return out


def video_table(annotations: pd.DataFrame, splits: pd.DataFrame) -> pd.DataFrame:
    """One manifest row per video of the split table, labels from the annotations.

    n_frames is the largest annotated frame (the best length known without the video) and fps 25;
    the command replaces both when it probes a video file or reads its OpenPose frames."""
    per_video = annotations.groupby("video_id", sort=False).agg(
        labels=("win_or_lose", lambda s: sorted(set(s))),
        subject=("subject_id", "first"),
        n_frames=("end_frame", "max"))
    conflicting = [v for v, labels in per_video["labels"].items() if len(labels) > 1]
    if conflicting:
        raise UserError(f"video(s) {conflicting[:10]} have different win_or_lose values on different "
                        "annotation rows; fix the annotation CSV")
    unsplit = sorted(set(per_video.index) - set(splits["video_id"]), key=_id_key)
    if unsplit:
        raise UserError(f"video(s) {unsplit[:10]} are annotated but missing from the split table: "
                        "add them (split `unused` keeps them out)")
    df = splits.merge(per_video, left_on="video_id", right_index=True, how="left")
    label_name = df["labels"].map(lambda ls: ls[0] if isinstance(ls, list) else "")
    df["label"] = label_name.map({"lose": 0, "win": 1}).astype("Int64")
    if "subject_id" not in df.columns:
        df["subject_id"] = df["subject"]
    df["subject_id"] = df["subject_id"].fillna(df["subject"])
    df["fps"] = FPS
    df["n_frames"] = df["n_frames"].astype("Int64")
    df["path"] = pd.NA
    df["source"] = "imigue"
    df = df.sort_values("video_id", key=lambda s: s.map(_id_key), kind="stable")
    return df[["video_id", "path", "label", "split", "subject_id", "fps", "n_frames", "source"]]


def dataset_info(protocol: str, rate_hz: float) -> DatasetInfo:
    return DatasetInfo(name="imigue", classes=list(CLASSES), positive=POSITIVE, protocol=protocol,
                       extra={"events_rate_hz": rate_hz, "event_classes": list(EVENT_CLASSES),
                              "event_names": {str(k): v for k, v in MICRO_GESTURE_NAMES.items()},
                              "event_groups": {str(k): v for k, v in GESTURE_GROUP_OF.items()}})


def events_multi_hot(start_frame: np.ndarray, end_frame: np.ndarray, classes: np.ndarray,
                     n_frames: int, fps: float = FPS, rate_hz: float = DEFAULT_EVENTS_RATE_HZ) -> np.ndarray:
    """(T'', 32) uint8: row i covers frames [i * fps / rate, (i + 1) * fps / rate); a class is 1 in
    every row its [start_frame, end_frame] (inclusive) overlaps. T'' = ceil(n_frames * rate / fps)."""
    if rate_hz <= 0 or fps <= 0:
        raise UserError(f"events rate ({rate_hz} Hz) and fps ({fps}) must be positive")
    last = max([int(n_frames)] + [int(e) + 1 for e in end_frame])   # an event past the end extends T''
    n_rows = max(1, math.ceil(last * rate_hz / fps))
    column = {c: i for i, c in enumerate(EVENT_CLASSES)}
    out = np.zeros((n_rows, len(EVENT_CLASSES)), dtype=np.uint8)
    first_row = np.floor(np.asarray(start_frame) * rate_hz / fps).astype(np.int64)
    last_row = np.floor(np.asarray(end_frame) * rate_hz / fps).astype(np.int64)
    for a, b, c in zip(first_row, last_row, classes):
        out[a:b + 1, column[int(c)]] = 1
    return out


def events_params(rate_hz: float, n_frames: int, fps: float) -> dict:
    return {"rate_hz": float(rate_hz), "classes": list(EVENT_CLASSES), "n_frames": int(n_frames),
            "fps": float(fps)}


def write_events(store: Store, video_id: str, rows: pd.DataFrame, n_frames: int, fps: float,
                 rate_hz: float) -> bool:
    """Write `events` for one video (`n_frames` at the video's `fps`) unless a current one is
    there; True when it wrote."""
    params = events_params(rate_hz, n_frames, fps)
    if store.is_current(video_id, "events", EVENTS_PRODUCER, EVENTS_VERSION, params):
        return False
    # Annotation frame numbers count at iMiGUE's 25 fps whatever the file's rate: rows are times.
    length_in_annotation_frames = math.ceil(n_frames * FPS / fps) if fps else n_frames
    events = events_multi_hot(rows["start_frame"].to_numpy(), rows["end_frame"].to_numpy(),
                              rows["class"].to_numpy(), length_in_annotation_frames, FPS, rate_hz)
    store.save(video_id, "events", events, EVENTS_PRODUCER, EVENTS_VERSION, params)
    return True


def describe_events(events: np.ndarray, rate_hz: float) -> list[tuple[float, float, str]]:
    """Runs of each class as (start s, end s, name), sorted by start: events turned back into
    readable intervals (what the annotations teacher writes as text)."""
    runs = []
    for col, cls in enumerate(EVENT_CLASSES):
        on = np.flatnonzero(np.diff(np.concatenate([[0], events[:, col].astype(np.int8), [0]])))
        for a, b in zip(on[0::2], on[1::2]):
            runs.append((a / rate_hz, b / rate_hz, MICRO_GESTURE_NAMES[cls]))
    return sorted(runs)


def _id_key(video_id: str) -> tuple:
    # Numeric ids sort as numbers (iMiGUE's 1..359), others after them as text.
    return (0, int(video_id), "") if str(video_id).isdigit() else (1, 0, str(video_id))
