"""`hiddenemo dataset imigue|folder|table`: create a workspace (`synthetic` lives in its own module).

Each writes `WORK/manifest.parquet` and `WORK/dataset.json`; `imigue` also writes the `events`
arrays and, given OpenPose output, `pose` and `box`. Re-running skips arrays that are current.
The work is done in `hiddenemo.data.ingest` (`table`: `hiddenemo.data.table`); these functions are
its command-line face.
"""
from __future__ import annotations

from pathlib import Path


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
    from hiddenemo.data.ingest import imigue_workspace, summary_lines

    table, _, written = imigue_workspace(labels, splits, out, protocol, videos, openpose, events_rate, workers)
    print("\n".join(summary_lines(table, out, written)))

def folder(videos: Path, out: Path, labels: Path | None = None, positive: str | None = None,
           missing_videos: str = "error", pleasant: str | None = None, classes: list[str] | None = None,
           safe_ids: bool = False, openpose: Path | None = None, workers: int | None = None) -> None:
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
        openpose: Optional folder with one subfolder per video id of OpenPose *_keypoints.json (e.g.
            shipped with the dataset, or `dataset synthetic`'s): keypoints are ingested now and
            `extract` skips them.
        workers: Processes for ingesting OpenPose JSON (default: all cores).
    """
    from hiddenemo.data.ingest import folder_workspace, summary_lines

    table, info = folder_workspace(videos, out, labels, positive, missing_videos, pleasant, classes, safe_ids,
                                   openpose, workers)
    print("\n".join(summary_lines(table, out, None, info.classes, info.positive)))
    print(f"  pleasant class {info.pleasant!r} (the behaviour teacher's cues point to it)" if info.pleasant else
          "  pleasant class not given: the behaviour teacher needs it (--pleasant CLASS); other teachers do not")


def table(labels: Path, out: Path, positive: str | None = None, pleasant: str | None = None,
          classes: list[str] | None = None, safe_ids: bool = False) -> None:
    """Workspace from a labels CSV alone, without video files (features or teacher texts come from elsewhere).

    For texts a teacher wrote elsewhere: `hiddenemo teach --teacher import --from FILE`, then `embed`
    and `train --model.modalities '[text]'`. Blank labels are unlabeled target videos; without a split
    column, labeled videos go to train and unlabeled ones to test. `dataset folder` is the path with videos.

    Args:
        labels: CSV with a header: video_id,label and optionally split (train/val/test/unused) and
            subject_id (keeps one person's videos in one validation fold).
        out: Workspace directory to create or update.
        positive: Name of the positive class for a two-class task; default: the rarer class (on a
            tie, the later name alphabetically). More classes: sorted names, no positive needed.
        pleasant: Which class is the pleasant one (as in `dataset folder`; only the behaviour teacher reads it).
        classes: Without any label: the class names [negative, positive], which the teachers' texts use.
        safe_ids: Give an id that cannot be a directory name (spaces, slashes, accents) a derived one
            (`Interview (2)` -> Interview_2) instead of stopping; the manifest keeps the written id in source_id.
    """
    from hiddenemo.data.ingest import summary_lines
    from hiddenemo.data.table import write_table_workspace

    rows, info = write_table_workspace(labels, out, positive, pleasant, classes, safe_ids)
    print("\n".join(summary_lines(rows, out, None, info.classes, info.positive)))
    print("  no video files: the text modality (`teach --teacher import --from FILE`, `embed`) is what this "
          "workspace trains on")
