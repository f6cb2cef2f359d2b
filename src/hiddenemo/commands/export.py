"""`hiddenemo export` and `hiddenemo apply`: a trained model as a directory of its own, and that
directory on new videos."""
from __future__ import annotations

from pathlib import Path
from typing import Literal, Optional

from hiddenemo.errors import UserError
from hiddenemo.teacher.config import VlmConfig


def export(work: Path, run: str, out: Path, model: Optional[str] = None) -> None:
    """Write a trained run's model as a self-contained directory that `hiddenemo apply` uses on new videos.

    MODEL_DIR gets the weights (every fold model of a fold ensemble), the resolved config, the threshold
    and how it was chosen, the feature recipe (extractors with versions and settings; teacher and text
    encoder), the classes, and a model card README.md with the cross-validated figures. Refuses a run
    that has not finished training.

    Args:
        work: The workspace the run was trained in.
        run: The run's name under WORK/runs.
        out: The model directory to write (new or empty; an earlier export there is replaced).
        model: Another of the run's models than its final one, e.g. stage1/frames.
    """
    from hiddenemo.export.bundle import ModelDir, apply_command, export_run, subjects_hint

    path = export_run(Path(work), run, Path(out), model)
    print(f"exported to {path} (model card: {path / 'README.md'})")
    description = ModelDir(path).description
    print(f"score new videos with it: {apply_command(path, description)}")
    hint = subjects_hint(description)
    if hint:
        print(f"({hint})")


def apply(model: Path, videos: Path, out: Path, cache: Optional[Path] = None, openpose: Optional[Path] = None,
          keypoints: Literal["recorded", "mediapipe"] = "recorded", annotations: Optional[Path] = None,
          without: list[str] = [], subjects: Optional[Path] = None, vlm: VlmConfig = VlmConfig(),
          workers: int = 1) -> None:
    """Predict new videos with an exported model: no workspace, no labels.

    Extracts what the model's recipe needs with the recorded extractors (refusing other versions),
    runs its teacher when it reads text (an API teacher takes its key from the environment), votes
    as training did, and writes PRED.csv (video_id, predicted_class, p_<class>..., n_votes, vote_std) and
    PRED.explain/<video_id>.json (per-modality effect, the teacher's text). Features are cached, so
    a second apply on the same videos is quick. A video that fails gets an empty row and its reason.

    Args:
        model: The model directory written by `hiddenemo export`.
        videos: A folder of videos or one video file (a video's id is its file name without extension).
        out: The predictions CSV to write.
        cache: Feature cache (default: $HIDDENEMO_CACHE/apply, else ~/.cache/hiddenemo/apply).
        openpose: For a model whose keypoints came from OpenPose JSON: one folder of JSON per video id.
        keypoints: recorded (the model's own keypoint extractor) or mediapipe (MediaPipe Holistic for a
            model trained on OpenPose JSON when the videos have none; probabilities shift).
        annotations: For a model with the events modality: the videos' timed gesture annotations
            (iMiGUE labels CSV format).
        without: Modalities to predict without (given as missing), e.g. [events].
        subjects: For a model with person-relative statistics: a CSV of video_id, subject_id for every
            video; each person's statistics are measured against their videos given in this call.
        vlm: For an API teacher: endpoint and limits (model and prompt are the model's own).
        workers: Videos extracted at once, each in its own process.
    """
    from hiddenemo.export.apply import ApplyOptions, load_model, write_outputs

    options = ApplyOptions(cache=cache, openpose=openpose, keypoints=keypoints, annotations=annotations,
                           without=list(without), subjects=subjects, vlm=vlm, workers=workers)
    table, explained = load_model(model).apply(videos, options)
    folder = write_outputs(table, explained, Path(out))
    failed = table.attrs["failed"]
    print(f"wrote {out} ({len(table) - len(failed)} videos predicted) and {folder}/")
    for video_id, reason in failed.items():
        print(f"failed {video_id}: {reason}")
    if failed and len(failed) == len(table):
        raise UserError(f"every video failed ({len(failed)}); nothing was predicted")
