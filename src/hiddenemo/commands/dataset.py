"""`hiddenemo dataset imigue|folder`: create a workspace (`synthetic` lives in its own module).

Both write `WORK/manifest.parquet` and `WORK/dataset.json`; `imigue` also writes the `events`
arrays and, given OpenPose output, `pose` and `box`. Re-running skips arrays that are current.
Heavy or optional libraries (PyAV) load inside the functions that need them.
"""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from hiddenemo.errors import UserError
from hiddenemo.words import count

log = logging.getLogger(__name__)


def imigue(labels: Path, splits: Path, out: Path, protocol: str = "miga", videos: Path | None = None,
           openpose: Path | None = None, events_rate: float = 5.0, workers: int | None = None) -> None:
    """Workspace from iMiGUE's annotation CSV and split table, with its micro-gestures as `events`.

    Videos with a blank win_or_lose are unlabeled (the target set of the teacher), not errors.
    Without --videos, n_frames is the largest annotated frame (or the OpenPose frame count) at 25 fps.

    Args:
        labels: iMiGUE annotation CSV (labels_20200831.csv format: video_id, label_id, start_time,
            start_frame, end_time, end_frame, class, subject_id, subject_gender,
            subject_nationality, win_or_lose).
        splits: Split table CSV: video_id, subject_id, cvpr21_emotion, miga_cross_subject.
        out: Workspace directory to create or update.
        protocol: miga (cross-subject, 255 train / 104 test) or cvpr21 (102 train / 100 test /
            157 unused).
        videos: Optional folder of the videos, matched by id (file name without extension;
            zero-padded numbers match too) and probed for fps and frame count.
        openpose: Optional folder with one subfolder per video id of OpenPose *_keypoints.json
            files; each becomes pose.npy and box.npy.
        events_rate: Rate of the events multi-hot sequence, in rows per second.
        workers: Processes parsing OpenPose JSON (default: min(2, CPUs)).
    """
    import pandas as pd
    from tqdm import tqdm

    from hiddenemo.data import imigue as im
    from hiddenemo.data.manifest import write_manifest
    from hiddenemo.data.store import Store

    annotations = im.read_annotations(labels)
    table = im.video_table(annotations, im.read_splits(splits, protocol))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    store = Store(out)
    im.dataset_info(protocol, events_rate).save(out)
    table = table.set_index("video_id", drop=False)

    if videos is not None:
        for video_id, path in _match_by_id(_video_files(videos), table.index, "video").items():
            table.loc[video_id, "path"] = str(path.resolve())
            fps, n_frames = probe_video(path)
            if fps:
                table.loc[video_id, "fps"] = fps
            if n_frames:
                table.loc[video_id, "n_frames"] = n_frames
    write_manifest(out, keep_measured(out, table))

    if openpose is not None:
        folders = _match_by_id(_subfolders(openpose), table.index, "OpenPose folder")
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
    _summary(table, out, written)


def folder(videos: Path, out: Path, labels: Path | None = None, positive: str | None = None,
           missing_videos: str = "error", pleasant: str | None = None, classes: list[str] | None = None,
           safe_ids: bool = False) -> None:
    """Workspace from any folder of videos and, optionally, a CSV `video_id,label[,split,subject_id]`.

    video_id is the file name without extension. Videos without a label row (or with a blank label)
    are unlabeled. Without a split column, labeled videos go to train and unlabeled ones to test.
    Without labels the workspace is unlabeled: extract, teach and embed work on it; train needs labels.

    Args:
        videos: Folder of video files (.mp4, .avi, .mov, .mkv, .webm, ...), not searched recursively.
        labels: CSV with a header: video_id,label and optionally split (train/val/test/unused) and
            subject_id (keeps one person's videos in one validation fold). Optional.
        out: Workspace directory to create or update.
        positive: Name of the positive class for a two-class task; default: the rarer class (on a
            tie, the later name alphabetically).
        missing_videos: What to do with label rows whose video is absent: error, or warn and drop.
        pleasant: Which class is the pleasant one (composed, nothing to hide, as iMiGUE's win), e.g.
            calm in calm/stressed. The rule-based `behaviour` teacher scores smiles and an open posture
            toward it, and refuses to guess when this is not given.
        classes: Without labels: the class names [negative, positive], which the teachers' texts use.
        safe_ids: Give a video whose file name cannot be an id (spaces, brackets, accents) an id derived
            from it (`Interview (2).mp4` -> Interview_2) instead of stopping; the labels CSV may use
            either, and the manifest's path keeps the file's own name.
    """
    from hiddenemo.data.folder import find_videos, folder_table, read_labels
    from hiddenemo.data.manifest import write_manifest

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
    _summary(table, out, None, info.classes, info.positive)
    print(f"  pleasant class {info.pleasant!r} (the behaviour teacher's cues point to it)" if info.pleasant else
          "  pleasant class not given: the behaviour teacher needs it (--pleasant CLASS); other teachers do not")


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


def _video_files(directory: Path) -> dict[str, Path]:
    from hiddenemo.data.folder import find_videos
    return find_videos(directory)


def _subfolders(directory: Path) -> dict[str, Path]:
    directory = Path(directory)
    if not directory.is_dir():
        raise UserError(f"OpenPose folder {directory} does not exist or is not a folder")
    return {p.name: p for p in sorted(directory.iterdir()) if p.is_dir()}


def _match_by_id(found: dict[str, Path], video_ids, what: str) -> dict[str, Path]:
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


def _summary(table, out: Path, events_written: int | None, classes=("lose", "win"), positive="win") -> None:
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
    print("\n".join(lines))
