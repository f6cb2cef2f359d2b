"""One video in, `box`, `pose`, `frames` and `frames_idx` out (and `pose_patch`, or X-CLIP's
`frames_xclip` in place of `frames`, when configured): the unit of extraction.

`VideoJob` loads its models once and then runs videos one after another; it holds no global state,
so a process pool (here) or a Ray actor (later) keeps one per worker. Each output is skipped when
the store already holds it from the same producer, version and parameters, and written atomically;
an interrupted video leaves nothing that looks finished.

Two passes over a video when a detector is used: the first decodes every frame but runs the
detector on every n-th one only, so the subject can be chosen knowing the whole video (SSD calls run
in `detect_lanes` threads at once, each with its own copy of the network: OpenCV releases the GIL);
the second runs the keypoints on every `keypoints_every`-th frame's person crop (the frames in
between are interpolated) and hands every `frames_every`-th crop to the embedding model, which runs
in a background thread in batches (onnxruntime and torch release the GIL, so it overlaps the
keypoints). Holistic is serial and keeps one core busy, so the second pass cuts a long video into
`keypoint_parts` consecutive parts that run at once, each in a thread with its own decoder and
Holistic (MediaPipe releases the GIL too).
"""
from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import numpy as np

from hiddenemo.data.keypoints import MIN_CONFIDENCE, box_from_keypoints, low_coverage, normalise_to_box, video_coverage
from hiddenemo.data.openpose import ingest_openpose, is_ingested
from hiddenemo.data.layout import N_KEYPOINTS
from hiddenemo.data.store import Store
from hiddenemo.errors import DISK_ERRORS, UserError
from hiddenemo.extract import decode
from hiddenemo.extract.boxes import crop_window, make_detector, subject_boxes
from hiddenemo.extract.config import EXTRACT_VERSION, ExtractConfig
from hiddenemo.extract.keypoints import interpolate_between
from hiddenemo.extract.patches import ARRAY as PATCHES, pixel_points
from hiddenemo.extract.xclip import clip_rows

log = logging.getLogger(__name__)
PRODUCER = "hiddenemo.extract"
MAX_PENDING_BATCHES = 3     # crops waiting for the embedding thread; bounds memory on long videos
KEYPOINT_WARMUP = 10        # frames a keypoint part tracks before its first one, to settle the tracking
MIN_PART_FRAMES = 200       # a video is cut into keypoint parts of at least this many frames


def part_bounds(n_frames: int, parts: int) -> list[tuple[int, int | None]]:
    """Consecutive (first, stop) frame ranges for the keypoint parts; the last runs to the end of the
    file (stop None), so a header count that is off changes nothing but where the cut falls."""
    parts = max(1, min(parts, n_frames // MIN_PART_FRAMES))
    cuts = [round(i * n_frames / parts) for i in range(parts)] + [None]
    return list(zip(cuts[:-1], cuts[1:]))


class _Part:
    """What one keypoint part produced, in frame order."""

    def __init__(self):
        self.xy, self.conf, self.boxes, self.measured = [], [], [], []
        self.frames_idx, self.embeddings = [], []


class VideoJob:
    """Extraction of one video at a time with models loaded once.

    `run(video_id, path) -> status dict` never raises for a bad video: the status says
    `failed` and why. `progress(n)` is called as frames are done (for a progress bar)."""

    def __init__(self, work: str | Path, config: ExtractConfig, threads: int = 0,
                 progress: Callable[[int], None] | None = None):
        config.check()
        self.store = Store(work)
        self.config = config
        self.threads = threads
        self.progress = progress or (lambda n: None)
        self.detectors = []          # one per lane of the detector pass; YOLO (torch) threads itself
        if config.box in ("ssd", "yolo") and config.keypoints != "openpose-json":
            lanes = (config.detect_lanes or max(1, threads)) if config.box == "ssd" else 1
            self.detectors = [make_detector(config.box, config.min_score, config.yolo_weights,
                                            threads if lanes == 1 else 1) for _ in range(lanes)]
        self.embedder, self.binder, self.frames_array, self.clip = None, None, "frames", 1
        if config.frames == "xclip":
            from hiddenemo.extract.xclip import ARRAY, XClipEmbedder
            self.embedder = XClipEmbedder(config.frames_model, config.frames_size, config.embed_threads(threads))
            self.frames_array, self.clip = ARRAY, self.embedder.clip_frames     # one row per clip of crops
        elif config.frames != "none":
            from hiddenemo.extract.embeddings import FrameEmbedder
            self.embedder = FrameEmbedder(config.frames, config.frames_model, config.frames_size,
                                          config.frames_pool, config.embed_threads(threads), config.frames_precision)
        if config.patches_dim:
            from hiddenemo.extract.patches import PatchBinder
            self.binder = PatchBinder(self.embedder, config.patches_dim)
        # crops per forward pass: whole clips for X-CLIP
        self.embed_batch = -(-config.frames_batch // self.clip) * self.clip
        self.keypoint_name = None
        if config.keypoints == "mediapipe":
            from hiddenemo.extract.keypoints import HolisticKeypoints
            self.keypoint_name = HolisticKeypoints.name
        self.timings = {"decode+detect": 0.0, "keypoints": 0.0, "embed": 0.0, "frames": 0}

    # ---- what is current -------------------------------------------------------------------------
    def box_params(self) -> dict:
        c = self.config
        if c.box == "pose-box":
            return {"box": "pose-box", "keypoints": self.keypoint_name}
        return {"box": c.box, "detector": self.detectors[0].name, "detect_every": c.detect_every,
                "min_score": c.min_score, "max_gap": c.max_gap}

    def pose_params(self) -> dict:
        params = {"keypoints": self.keypoint_name, "crop_margin": self.config.crop_margin,
                  "box": self.box_params()}
        # One pass on every frame, as before these options existed, keeps its old record.
        if self.config.keypoint_parts != 1:
            params["parts"] = self.config.keypoint_parts
        if self.config.keypoints_every != 1:
            params["keypoints_every"] = self.config.keypoints_every
        return params

    def frames_params(self, box_meta: dict | None) -> dict:
        c = self.config
        source = {k: box_meta.get(k) for k in ("producer", "version", "params")} if box_meta else None
        return {"model": self.embedder.name, "size": c.frames_size, "pool": c.frames_pool,
                "every": c.frames_every, "crop_margin": c.crop_margin, "box": source}

    def patch_params(self, video_id: str) -> dict:
        pose = self.store.meta(video_id, "pose")
        return {**self.frames_params(self.store.meta(video_id, "box")), "patches": self.binder.recipe,
                "pose": {k: pose.get(k) for k in ("producer", "version", "params")} if pose else None}

    def _current(self, video_id: str, name: str, params: dict) -> bool:
        return self.store.is_current(video_id, name, PRODUCER, EXTRACT_VERSION, params)

    def _pose_done(self, video_id: str) -> bool:
        c = self.config
        if c.keypoints == "mediapipe":
            return self._current(video_id, "box", self.box_params()) and \
                self._current(video_id, "pose", self.pose_params())
        if c.keypoints == "openpose-json":
            return is_ingested(self.store, video_id)
        # keypoints: none keeps whatever pose there is; the box must exist (pose is normalised to it).
        if self.store.has(video_id, "pose"):
            return self.store.has(video_id, "box")
        return c.box != "pose-box" and self._current(video_id, "box", self.box_params())

    def _frames_done(self, video_id: str) -> bool:
        if self.embedder is None:
            return True
        params = self.frames_params(self.store.meta(video_id, "box"))
        done = self._current(video_id, self.frames_array, params) and \
            self._current(video_id, f"{self.frames_array}_idx", params)
        return done and (self.binder is None or self._current(video_id, PATCHES, self.patch_params(video_id)))

    # ---- one video -------------------------------------------------------------------------------
    def run(self, video_id: str, path: str | Path | None) -> dict:
        start = time.perf_counter()
        status = {"video_id": video_id, "status": "ok", "reason": None, "seconds": 0.0,
                  "n_frames": None, "fps": None, "wrote": []}
        try:
            if self._pose_done(video_id) and self._frames_done(video_id):
                status["status"] = "skipped"
                status["reason"] = "all outputs current"
                if self.store.has(video_id, "box"):
                    status["n_frames"] = int(self.store.load(video_id, "box").shape[0])
            else:
                self._extract(video_id, path, status)
            self._note_coverage(video_id, status)
        except OSError as e:
            reason = (f"cannot write {e.filename}: {e.strerror}; free space (or fix the permissions) there and run "
                      "the same command again" if e.errno in DISK_ERRORS else str(e))
            status.update(status="failed", reason=reason)
            log.warning("video %s failed: %s", video_id, reason)
        except (UserError, ValueError, RuntimeError) as e:
            status.update(status="failed", reason=str(e))
            log.warning("video %s failed: %s", video_id, e)
        except Exception as e:  # noqa: BLE001 - one broken video must not stop the others
            status.update(status="failed", reason=f"{type(e).__name__}: {e}")
            log.exception("video %s failed unexpectedly", video_id)
        status["seconds"] = round(time.perf_counter() - start, 3)
        return status

    def _note_coverage(self, video_id: str, status: dict) -> None:
        """The share of frames with a person, a face and a hand goes into the status line; a video with
        too little of them is not a failure of the tool, but say so in its status line and the log."""
        if not self.store.has(video_id, "box"):
            return
        pose = self.store.load(video_id, "pose") if self.store.has(video_id, "pose") else None
        shares = status["coverage"] = video_coverage(self.store.load(video_id, "box"), pose)
        seen = ", ".join(f"{part} {share:.0%}" for part, share in shares.items())
        if shares["person"] == 0:
            note = "no person found in any frame: the video trains and predicts on no input"
        elif low_coverage(shares):
            note = f"low coverage ({seen} of the frames): little to learn from"
        else:
            return
        note += "; look at it with `hiddenemo extract --preview`"
        if status["status"] == "skipped":        # said when it was extracted; the summary lists it again
            status["reason"] = f"{status['reason']}; {note}"
            return
        status["reason"] = note
        log.warning("video %s: %s", video_id, note)

    def _extract(self, video_id: str, path: str | Path | None, status: dict) -> None:
        c = self.config
        need_pose = not self._pose_done(video_id)
        if need_pose and c.keypoints == "openpose-json":
            self._ingest_openpose(video_id)               # needs the JSON only, not the video
            status["wrote"] += ["pose", "box"]
            need_pose = False
        if need_pose and c.keypoints == "none" and c.box == "pose-box":
            raise UserError(f"video {video_id}: box: pose-box needs keypoints, and no pose.npy exists; "
                            "use keypoints: mediapipe or box: ssd")
        # A box written in this run (now or in the second pass) means new crops: redo the frames.
        need_frames = self.embedder is not None and (bool(status["wrote"]) or need_pose
                                                     or not self._frames_done(video_id))
        if not (need_pose or need_frames):
            return
        if path is None or str(path) in ("", "nan", "<NA>"):
            raise UserError(f"video {video_id}: the manifest has no video file, which extraction needs; "
                            "add the videos (`hiddenemo dataset ... --videos DIR`)")
        info = decode.probe(path)
        box = None
        if need_pose and c.box != "pose-box":
            box, decoded = self._detect(path, info)                  # (T, 5)
            status.update(n_frames=decoded.n_frames, fps=decoded.fps)
            if c.keypoints == "none":
                self.store.save(video_id, "box", box, PRODUCER, EXTRACT_VERSION, self.box_params())
                status["wrote"].append("box")
                need_pose = False
        if not need_pose:
            box = self.store.load(video_id, "box", mmap=False) if self.store.has(video_id, "box") else None
        if need_pose or need_frames:
            self._second_pass(video_id, path, info, box, need_pose, need_frames, status)

    def _ingest_openpose(self, video_id: str) -> None:
        if self.config.openpose_dir is None:
            raise UserError(f"video {video_id}: keypoints: openpose-json, but no pose.npy was ingested by "
                            "`hiddenemo dataset ... --openpose` and no openpose_dir was given")
        folder = Path(self.config.openpose_dir) / video_id
        if not folder.is_dir():
            raise UserError(f"video {video_id}: no OpenPose folder {folder}")
        ingest_openpose(self.store, video_id, folder)

    def _detect(self, path, info: decode.VideoInfo) -> tuple[np.ndarray, decode.Decoded]:
        """Pass 1: the detector on every n-th frame, then the subject's boxes for every frame."""
        c = self.config
        t0 = time.perf_counter()
        decoded = decode.Decoded()
        stream = decode.prefetch(decode.frames(path, decoded, step=c.detect_every), depth=2 * len(self.detectors))
        taking = threading.Lock()

        def lane(detector) -> dict[int, np.ndarray]:
            """Take the next frame to detect on until there is none; frames go to whichever lane is free."""
            found = {}
            while True:
                with taking:
                    item = next(stream, None)
                if item is None:
                    return found
                found[item[0]] = detector(item[1])

        try:
            if len(self.detectors) == 1:
                detections = lane(self.detectors[0])
            else:
                with ThreadPoolExecutor(len(self.detectors), thread_name_prefix="detect") as lanes:
                    detections = {t: d for found in lanes.map(lane, self.detectors) for t, d in found.items()}
        finally:
            stream.close()              # a lane that failed leaves the decoder thread to be stopped
        self.timings["decode+detect"] += time.perf_counter() - t0
        box = subject_boxes(detections, decoded.n_frames, info.width, info.height, c.detect_every, c.max_gap)
        return box, decoded

    def _second_pass(self, video_id: str, path, info: decode.VideoInfo, box: np.ndarray | None,
                     need_pose: bool, need_frames: bool, status: dict) -> None:
        c = self.config
        stored_pose = None
        if self.binder is not None and not need_pose:
            if not self.store.has(video_id, "pose"):
                raise UserError(f"video {video_id}: patches_dim binds keypoints to patches, and there are no "
                                "keypoints; use keypoints: mediapipe or openpose-json")
            stored_pose = self.store.load(video_id, "pose")
        n_hint = len(box) if box is not None else info.n_frames_hint
        bounds = part_bounds(n_hint, c.keypoint_parts if need_pose else 1)
        decoded = decode.Decoded()          # filled by the last part, which decodes to the end
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embed") if need_frames else None
        try:
            if len(bounds) == 1:
                parts = [self._part(path, info, box, 0, None, need_pose, pool, decoded, stored_pose)]
            else:
                with ThreadPoolExecutor(len(bounds), thread_name_prefix="keypoints") as lanes:
                    futures = [lanes.submit(self._part, path, info, box, first, stop, need_pose, pool,
                                            decoded if stop is None else None, stored_pose)
                               for first, stop in bounds]
                    parts = [f.result() for f in futures]
        finally:
            if pool is not None:
                pool.shutdown(wait=True)
        status.update(n_frames=decoded.n_frames, fps=decoded.fps)

        if need_pose:
            # Row by row: a part past the end of a file whose header overstated its length is empty.
            xy = np.stack([row for part in parts for row in part.xy])
            conf = np.stack([row for part in parts for row in part.conf])
            if c.keypoints_every > 1:
                measured = np.array([m for part in parts for m in part.measured])
                xy, conf = interpolate_between(xy, conf, measured)
            det_box = None if c.box == "pose-box" else np.stack([row for part in parts for row in part.boxes])
            pose, box = normalise_to_box(xy, conf, det_box)
            self.store.save(video_id, "box", box, PRODUCER, EXTRACT_VERSION, self.box_params())
            self.store.save(video_id, "pose", pose, PRODUCER, EXTRACT_VERSION, self.pose_params())
            status["wrote"] += ["box", "pose"]
        if need_frames:
            params = self.frames_params(self.store.meta(video_id, "box"))
            dim, name = self.embedder.dim, self.frames_array
            embeddings = [e for part in parts for e in part.embeddings]
            frames_idx = [t for part in parts for t in part.frames_idx]
            if self.binder is not None:
                bound = [b for _, b in embeddings]
                embeddings = [e for e, _ in embeddings]
                bound = np.concatenate(bound) if bound else np.zeros((0, N_KEYPOINTS, self.binder.width), np.float32)
                self.store.save(video_id, PATCHES, bound.astype(np.float16), PRODUCER, EXTRACT_VERSION,
                                self.patch_params(video_id))
                status["wrote"].append(PATCHES)
            frames = np.concatenate(embeddings) if embeddings else np.zeros((0, dim), np.float32)
            # frames_idx first: `frames` is the array readers look for, written last.
            self.store.save(video_id, f"{name}_idx", np.asarray(frames_idx, dtype=np.int64), PRODUCER,
                            EXTRACT_VERSION, params)
            self.store.save(video_id, name, frames.astype(np.float16), PRODUCER, EXTRACT_VERSION, params)
            status["wrote"] += [f"{name}_idx", name]

    def _part(self, path, info: decode.VideoInfo, box: np.ndarray | None, first: int, stop: int | None,
              need_pose: bool, pool: ThreadPoolExecutor | None, decoded: decode.Decoded | None,
              stored_pose: np.ndarray | None = None) -> "_Part":
        """Frames first..stop-1 (stop None: to the end): keypoints on every `keypoints_every`-th frame
        with a fresh Holistic (warmed up on the frames just before `first`, whose points are dropped;
        the frames in between are left empty and marked unmeasured, to be interpolated over the whole
        video), and every `frames_every`-th crop to the embedding thread in batches formed within
        this part only, so the embeddings do not depend on which part finished first."""
        c = self.config
        out = _Part()
        holistic = None
        if need_pose:
            from hiddenemo.extract.keypoints import HolisticKeypoints
            holistic = HolisticKeypoints()     # per part: tracking state must not carry over
        warm_from = max(0, first - KEYPOINT_WARMUP) if holistic is not None else first
        batch, batch_idx, batch_points, pending = [], [], [], []
        reported, t = first, first - 1            # frames counted towards the progress bar; the last seen
        unmeasured = (np.full((N_KEYPOINTS, 2), np.nan, np.float32), np.zeros(N_KEYPOINTS, np.float32))

        def flush():
            pending.append(pool.submit(self._embed, list(batch), list(batch_points)))
            out.frames_idx.extend(clip_rows(batch_idx, self.clip) if self.clip > 1 else batch_idx)
            batch.clear(), batch_idx.clear(), batch_points.clear()
            while len(pending) >= MAX_PENDING_BATCHES:
                out.embeddings.append(pending.pop(0).result())

        def keypoints(rgb, frame_box):
            k0 = time.perf_counter()
            found = holistic(rgb, crop_window(frame_box, info.width, info.height, c.crop_margin))
            self.timings["keypoints"] += time.perf_counter() - k0
            return found

        # Without keypoints only the embedded frames need converting to RGB (the demo's case).
        step = 1 if holistic is not None else c.frames_every
        try:
            for t, rgb in decode.prefetch(decode.frames(path, decoded, step, warm_from, stop)):
                frame_box = box[t] if box is not None and t < len(box) else np.full(5, np.nan, np.float32)
                embed = pool is not None and t % c.frames_every == 0
                has_box = np.isfinite(frame_box[:4]).all()
                xy, conf = unmeasured
                if holistic is not None:
                    # An embedded frame whose crop or bound points need its own keypoints is measured too.
                    measure = t % c.keypoints_every == 0 or (embed and (self.binder is not None or not has_box))
                    if measure:
                        xy, conf = keypoints(rgb, frame_box)
                    if t < first:
                        continue                     # warm-up: the previous part has this frame
                    out.xy.append(xy), out.conf.append(conf), out.measured.append(measure)
                    out.boxes.append(frame_box)       # where NaN, the keypoints' own box fills it in later
                    if not has_box:
                        # No detector box here (or box: pose-box): the keypoints span one.
                        frame_box = box_from_keypoints(xy[None], conf[None])[0]
                if embed:
                    window = crop_window(frame_box, info.width, info.height, c.crop_margin)
                    if window is not None:
                        batch.append(rgb[window[1]:window[3], window[0]:window[2]].copy())
                        batch_idx.append(t)
                        if self.binder is not None:       # the frame's keypoints in crop pixels
                            if holistic is not None:
                                points = np.where((conf > MIN_CONFIDENCE)[:, None], xy, np.nan)
                            elif t < len(stored_pose):
                                points = pixel_points(stored_pose[t], frame_box)
                            else:
                                points = np.full((N_KEYPOINTS, 2), np.nan, np.float32)
                            batch_points.append(points - np.array(window[:2], np.float32))
                        if len(batch) == self.embed_batch:
                            flush()
                if t + 1 - reported >= 25:
                    self._report(t + 1 - reported)
                    reported = t + 1
            # The file ended inside this part: its last frame is measured, so the frames before it
            # have a measured frame on either side.
            if out.measured and not out.measured[-1] and (stop is None or t + 1 < stop):
                out.xy[-1], out.conf[-1] = keypoints(rgb, out.boxes[-1])
                out.measured[-1] = True
            if batch:
                flush()
            out.embeddings.extend(f.result() for f in pending)
            pending.clear()
            self._report(max(0, (decoded.n_frames if decoded is not None else t + 1) - reported))
        finally:
            for f in pending:
                f.cancel()
            if holistic is not None:
                holistic.close()
        return out

    def _report(self, n: int) -> None:
        self.progress(n)
        self.timings["frames"] += n

    def _embed(self, crops: list[np.ndarray], points: list[np.ndarray]):
        t0 = time.perf_counter()
        out = self.binder(crops, points) if self.binder is not None else self.embedder(crops)
        self.timings["embed"] += time.perf_counter() - t0
        return out

