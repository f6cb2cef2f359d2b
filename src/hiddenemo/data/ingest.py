"""Filling a workspace from files on disk: the library behind `hiddenemo dataset imigue|folder`.

Video files are matched to the dataset's ids and probed for fps and frame count (their headers only);
OpenPose folders are ingested into `pose` and `box`; values a workspace has already measured (the
decoded frame count and rate that extraction wrote) are kept on a re-run; a summary says what the
workspace holds. One bad video never stops the others.
"""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pandas as pd

from hiddenemo.data.manifest import DatasetInfo, write_manifest
from hiddenemo.data.store import Store
from hiddenemo.errors import UserError
from hiddenemo.words import count

log = logging.getLogger(__name__)


def imigue_workspace(labels: Path, splits: Path, out: Path, protocol: str = "miga", videos: Path | None = None,
                     openpose: Path | None = None, events_rate: float = 5.0,
                     workers: int | None = None) -> tuple[pd.DataFrame, DatasetInfo, int]:
    """Workspace `out` from iMiGUE's annotation CSV and split table (options as `hiddenemo dataset
    imigue`); returns (the manifest table, the dataset info, how many events arrays were written)."""
    from tqdm import tqdm

    from hiddenemo.data import imigue as im
    from hiddenemo.data.folder import find_videos

    annotations = im.read_annotations(labels)
    table = im.video_table(annotations, im.read_splits(splits, protocol))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    store = Store(out)
    info = im.dataset_info(protocol, events_rate)
    info.save(out)
    table = table.set_index("video_id", drop=False)

    if videos is not None:
        for video_id, path in match_by_id(find_videos(videos), table.index, "video").items():
            table.loc[video_id, "path"] = str(path.resolve())
            fps, n_frames = probe_video(path)
            if fps:
                table.loc[video_id, "fps"] = fps
            if n_frames:
                table.loc[video_id, "n_frames"] = n_frames
    write_manifest(out, keep_measured(out, table))

    if openpose is not None:
        folders = match_by_id(subfolders(openpose), table.index, "OpenPose folder")
        frames = ingest_openpose_folders(store, out, folders, workers)
        for video_id, n_frames in frames.items():
            if pd.isna(table.loc[video_id, "path"]):      # a probed video knows its length best
                table.loc[video_id, "n_frames"] = n_frames
        write_manifest(out, table)

    written = 0
    by_video = dict(tuple(annotations.groupby("video_id")))
    empty = annotations.iloc[:0]
    for video_id, row in tqdm(table.iterrows(), total=len(table), desc="events", leave=False):
        n_frames = 0 if pd.isna(row["n_frames"]) else int(row["n_frames"])
        written += im.write_events(store, video_id, by_video.get(video_id, empty), n_frames,
                                   float(row["fps"]), events_rate)
    return table, info, written


def folder_workspace(videos: Path, out: Path, labels: Path | None = None, positive: str | None = None,
                     missing_videos: str = "error", pleasant: str | None = None, classes: list[str] | None = None,
                     safe_ids: bool = False, openpose: Path | None = None,
                     workers: int | None = None) -> tuple[pd.DataFrame, DatasetInfo]:
    """Workspace `out` from a folder of videos and an optional labels CSV (options as `hiddenemo dataset
    folder`), with the OpenPose JSON folders under `openpose` ingested when given; returns (the
    manifest table, the dataset info)."""
    from hiddenemo.data.folder import find_videos, folder_table, read_labels

    found = find_videos(videos, safe_ids)
    table, info = folder_table(found, read_labels(labels) if labels else None, positive, missing_videos,
                               pleasant, classes)
    for i, path in enumerate(table["path"]):
        fps, n_frames = probe_video(Path(path))
        table.loc[i, "fps"], table.loc[i, "n_frames"] = fps, n_frames
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    info.save(out)
    write_manifest(out, keep_measured(out, table))
    if openpose is not None:
        ingest_openpose_folders(Store(out), out, match_by_id(subfolders(openpose), table["video_id"], "OpenPose folder"),
                                workers)
    return table, info


def ingest_openpose_folders(store, work: Path, folders: dict[str, Path], workers: int | None = None) -> dict[str, int]:
    """Ingest each video's OpenPose folder, skipping current ones; a failure is logged to
    WORK/status/openpose.jsonl and the rest go on. Returns video_id -> frame count of the ingested."""
    from tqdm import tqdm

    from hiddenemo.data.openpose import ingest_openpose, is_ingested
    from hiddenemo.data.store import atomic_write_text

    frames: dict[str, int] = {}
    records: list[dict] = []
    status_path = Path(work) / "status" / "openpose.jsonl"
    for video_id, directory in tqdm(sorted(folders.items()), desc="openpose", unit="video"):
        start = time.perf_counter()
        if is_ingested(store, video_id):
            frames[video_id] = store.meta(video_id, "pose")["shape"][0]
            record = {"status": "skipped", "reason": "current pose/box already stored"}
        else:
            try:
                report = ingest_openpose(store, video_id, directory, workers=workers)
                frames[video_id] = report["n_frames"]
                record = {"status": "ok", "reason": "", "report": report}
                if report["unreadable_files"]:
                    log.warning("video %s: %d unreadable OpenPose file(s), left empty: %s", video_id,
                                len(report["unreadable_files"]), report["unreadable_files"][:5])
            except Exception as e:  # one bad video never stops the others
                log.error("video %s: OpenPose folder %s failed: %s", video_id, directory, e)
                record = {"status": "failed", "reason": f"{type(e).__name__}: {e}"}
        records.append({"video_id": video_id, **record, "seconds": round(time.perf_counter() - start, 3)})
    # Appending through an atomic rewrite: the log is whole after any crash.
    old = status_path.read_text() if status_path.exists() else ""
    atomic_write_text(status_path, old + "".join(json.dumps(r, default=str) + "\n" for r in records))
    failed = [r["video_id"] for r in records if r["status"] == "failed"]
    if failed:
        log.error("OpenPose failed for %d video(s): %s (reasons in %s)", len(failed), failed[:10], status_path)
    return frames


def keep_measured(work: Path, table):
    """`table` with the fps and n_frames the workspace's manifest already holds for the same video file:
    extraction wrote the decoded count and rate there, and putting the header's estimate back would
    change finished work (a verdict, a prediction). A re-run with the same inputs changes nothing."""
    from hiddenemo.data.manifest import ManifestError, read_manifest

    try:
        old = read_manifest(work) if (Path(work) / "manifest.parquet").exists() else None
    except ManifestError:
        return table                          # unreadable: this run re-creates it
    if old is None:
        return table
    key = lambda df: df["video_id"].astype(str) + "\0" + df["path"].astype(str)
    old = old[old["path"].notna()]
    if old.empty:
        return table
    old, at = old.set_index(key(old)), key(table)
    for column in ("fps", "n_frames"):
        before = at.map(old[column])
        table[column] = table[column].astype(old[column].dtype).mask(before.notna(), before)
    return table


def probe_video(path: Path) -> tuple[float | None, int | None]:
    """(fps, frame count) from the container's header (`hiddenemo.extract.decode.probe`, no
    decoding); unknown parts are None, and a file that cannot be opened gets a warning (`extract`
    reports it again and counts the frames exactly)."""
    from hiddenemo.extract.decode import VideoError, probe

    try:
        info = probe(path)
    except VideoError as e:
        log.warning("cannot probe %s: fps and frame count left unknown", e)
        return None, None
    return info.fps or None, info.n_frames_hint or None


def subfolders(directory: Path) -> dict[str, Path]:
    directory = Path(directory)
    if not directory.is_dir():
        raise UserError(f"OpenPose folder {directory} does not exist or is not a folder")
    return {p.name: p for p in sorted(directory.iterdir()) if p.is_dir()}


def match_by_id(found: dict[str, Path], video_ids, what: str) -> dict[str, Path]:
    """Match names to manifest ids; a zero-padded number ("0298") matches its id ("298")."""
    known = set(video_ids)
    matched: dict[str, Path] = {}
    stray = []
    for name, path in found.items():
        key = str(int(name)) if name.isdigit() and str(int(name)) in known else name
        if key not in known:
            stray.append(name)
        elif key in matched:
            raise UserError(f"two {what}s match video {key}: {matched[key]} and {path}")
        else:
            matched[key] = path
    if stray:
        log.warning("%d %s(s) match no video id of the split table, ignored: %s", len(stray), what, stray[:10])
    log.info("%s found for %d of %d videos", what, len(matched), len(known))
    return matched


def summary_lines(table, out: Path, events_written: int | None, classes=("lose", "win"),
                  positive="win") -> list[str]:
    """What the workspace holds: videos, labels per split and class, events written."""
    labeled = table["label"].notna()
    lines = [f"workspace {out}: {count(len(table), 'video')}, {int(labeled.sum())} labeled"]
    for split, part in table.groupby("split"):
        counts = part["label"].value_counts()
        by_class = ", ".join(f"{classes[int(i)]} {int(n)}" for i, n in sorted(counts.items()))
        lines.append(f"  {split}: {count(len(part), 'video')}, {int(part['label'].notna().sum())} labeled"
                     + (f" ({by_class})" if by_class else ""))
    lines.append(f"  classes {list(classes)}, positive {positive!r}" if classes else
                 "  no labels: extract, teach and embed work; `train` needs labels (or score the videos with an "
                 "exported model: `hiddenemo apply`)")
    if events_written is not None:
        lines.append(f"  events: {events_written} written, {len(table) - events_written} already current")
    return lines
