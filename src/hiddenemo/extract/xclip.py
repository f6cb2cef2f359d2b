"""X-CLIP video features (the paper's Table 2 baseline: X-CLIP Base on 16 frames) of the person crop.

A transformers `XCLIPModel` by hub name or local directory (e.g. microsoft/xclip-base-patch16-16-frames,
or a copy of it on disk). The crops the extraction takes every `frames_every` frames are cut into
consecutive clips of the model's `num_frames` (16 for the 16-frame models): windows over the whole
video, each giving one video embedding (the vision encoder per frame, the visual projection, then
X-CLIP's multi-frame integration Transformer; `get_video_features`). A video's last clip, when shorter,
repeats its last crop. Stored as `frames_xclip` (n_clips, projection_dim) beside `frames_xclip_idx`,
the middle frame of each clip, so they live beside the DINOv2 `frames` of the same workspace.

Crops are letterboxed like DINOv2's, with CLIP's normalisation.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from hiddenemo.errors import UserError
from hiddenemo.extract.embeddings import letterbox

CLIP_MEAN = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)
CLIP_STD = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)
ARRAY = "frames_xclip"


def clip_rows(frame_idx: list[int], clip: int) -> list[int]:
    """The frame each clip of `clip` consecutive entries of frame_idx stands for: its middle one."""
    return [frame_idx[min(i + clip // 2, len(frame_idx) - 1)] for i in range(0, len(frame_idx), clip)]


class XClipEmbedder:
    """Crops in (a multiple of `clip_frames`, or the video's last ones), one (D,) row per clip out."""

    def __init__(self, name_or_path: str, size: int = 224, threads: int = 0):
        import torch
        from transformers import XCLIPModel

        if threads:
            torch.set_num_threads(threads)
        try:
            self.model = XCLIPModel.from_pretrained(name_or_path).eval()
        except (OSError, ValueError) as e:
            raise UserError(f"frames_model {name_or_path!r} could not be loaded as X-CLIP ({e}); give a local "
                            "directory with config.json and weights, or a hub name with network access") from e
        vision = self.model.config.vision_config
        if size != vision.image_size:
            raise UserError(f"frames_size is {size}, but the X-CLIP model {name_or_path!r} takes {vision.image_size} px "
                            f"input; set --extract.frames_size {vision.image_size}")
        self.size, self.clip_frames = size, vision.num_frames
        self.dim = self.model.config.projection_dim
        self.pool_how = "clip"
        self.name = f"xclip:{Path(name_or_path).name if Path(name_or_path).exists() else name_or_path}"

    def __call__(self, crops: list[np.ndarray]) -> np.ndarray:
        import torch

        frames = [letterbox(c, self.size, CLIP_MEAN, CLIP_STD) for c in crops]
        frames += [frames[-1]] * (-len(frames) % self.clip_frames)              # pad the last clip
        clips = np.stack(frames).reshape(-1, self.clip_frames, 3, self.size, self.size)  # (n_clips, F, 3, S, S)
        with torch.inference_mode():
            out = self.model.get_video_features(pixel_values=torch.from_numpy(clips))
        return out.pooler_output.float().numpy()                                 # (n_clips, D)
