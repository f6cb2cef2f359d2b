"""Keypoints bound to DINOv2 patches and X-CLIP clip features: the sampling geometry, a tiny random
DINOv2 and a tiny random X-CLIP saved to a local directory and loaded by path (no hub download), the
extraction job writing both, and the training data giving `pose-patch` its inputs."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers_video import moving_square_frames, write_video
from test_openpose import person, write_frame

from hiddenemo.data.manifest import write_manifest
from hiddenemo.data.openpose import ingest_openpose
from hiddenemo.data.layout import N_KEYPOINTS
from hiddenemo.data.store import Store
from hiddenemo.errors import UserError
from hiddenemo.extract.config import ExtractConfig
from hiddenemo.extract.embeddings import FrameEmbedder, letterbox_geometry
from hiddenemo.extract.patches import PatchBinder, projection, sample_bilinear, token_grid
from hiddenemo.extract.runner import extract_all, read_status
from hiddenemo.extract.xclip import XClipEmbedder, clip_rows
from hiddenemo.train.config import SamplingConfig
from hiddenemo.train.data import VideoDataset, nearest_rows

SIZE, PATCH = 56, 14                       # a 4 x 4 patch grid


@pytest.fixture(scope="module")
def tiny_dinov2(tmp_path_factory) -> Path:
    from transformers import Dinov2Config, Dinov2Model

    path = tmp_path_factory.mktemp("dinov2-tiny")
    Dinov2Model(Dinov2Config(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                             patch_size=PATCH, image_size=SIZE)).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def tiny_xclip(tmp_path_factory) -> Path:
    from transformers import XCLIPConfig, XCLIPModel

    path = tmp_path_factory.mktemp("xclip-tiny")
    config = XCLIPConfig(
        text_config={"vocab_size": 99, "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1,
                     "num_attention_heads": 2, "max_position_embeddings": 16},
        vision_config={"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
                       "image_size": 32, "patch_size": 16, "num_frames": 4, "mit_hidden_size": 12,
                       "mit_intermediate_size": 32, "mit_num_hidden_layers": 1, "mit_num_attention_heads": 2},
        projection_dim=12, prompt_layers=1, prompt_num_attention_heads=2, prompt_projection_dim=12)
    XCLIPModel(config).eval().save_pretrained(path)
    return path


def test_bilinear_sampling_reads_the_token_at_a_patch_centre_and_blends_between():
    grid = np.random.default_rng(0).standard_normal((4, 4, 5)).astype(np.float32)
    centre = lambda row, col: [(col + 0.5) * PATCH, (row + 0.5) * PATCH]       # noqa: E731  (x, y)
    uv = np.array([centre(0, 0), centre(2, 1), centre(3, 3), centre(1, 3)])
    np.testing.assert_allclose(sample_bilinear(grid, uv, PATCH), grid[[0, 2, 3, 1], [0, 1, 3, 3]], rtol=1e-6)
    halfway = np.array([[(1 + 0.5 + 0.5) * PATCH, (2 + 0.5) * PATCH]])             # between columns 1 and 2
    np.testing.assert_allclose(sample_bilinear(grid, halfway, PATCH)[0], (grid[2, 1] + grid[2, 2]) / 2, rtol=1e-5)
    outside = sample_bilinear(grid, np.array([[-30.0, 500.0], [np.nan, np.nan]]), PATCH)
    np.testing.assert_allclose(outside[0], grid[3, 0], rtol=1e-6)                  # clamped to the border
    assert np.isnan(outside[1]).all()


def test_projection_is_fixed_and_orthonormal():
    a, b = projection(32, 8), projection(32, 8)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(a.T @ a, np.eye(8), atol=1e-5)


def test_binder_gives_the_token_under_a_keypoint_at_a_known_patch_and_masks_missing_points(tiny_dinov2):
    embedder = FrameEmbedder("dinov2", str(tiny_dinov2), size=SIZE)
    binder = PatchBinder(embedder, width=8)
    crop = np.random.default_rng(1).integers(0, 255, (90, 45, 3), dtype=np.uint8)    # tall: letterboxed sideways
    nh, nw, top, left = letterbox_geometry(90, 45, SIZE)
    points = np.full((N_KEYPOINTS, 2), np.nan, np.float32)
    targets = {0: (1, 1), 5: (3, 2), 30: (0, 1)}                                     # point -> patch (row, col)
    for point, (row, col) in targets.items():                                       # back from input to crop pixels
        points[point] = [((col + 0.5) * PATCH - left) * 45 / nw, ((row + 0.5) * PATCH - top) * 90 / nh]
    cls, bound = binder([crop], [points])
    grid = token_grid(embedder.tokens([crop]), SIZE, PATCH)[0]
    assert cls.shape == (1, 32) and bound.shape == (1, N_KEYPOINTS, 8)
    for point, (row, col) in targets.items():
        np.testing.assert_allclose(bound[0, point], grid[row, col] @ binder.matrix, rtol=1e-4, atol=1e-5)
    missing = [i for i in range(N_KEYPOINTS) if i not in targets]
    assert np.isnan(bound[0, missing]).all()
    np.testing.assert_allclose(cls, embedder([crop]), rtol=1e-5)                    # the same forward pass
    assert binder.recipe["projection"]["kind"] == "random orthonormal" and binder.recipe["width"] == 8


def test_nearest_embedded_row_within_the_stride():
    rows, near = nearest_rows(np.array([0, 10, 20]), np.array([0, 4, 6, 19, 31, 45]))
    assert rows.tolist() == [0, 0, 1, 2, 2, 2]
    assert near.tolist() == [True, True, True, True, False, False]


def openpose_workspace(tmp_path: Path, work: Path, n: int = 10) -> Store:
    video = write_video(tmp_path / "clip.mp4", moving_square_frames(n, 160, 120))
    folder = tmp_path / "openpose" / "clip"
    folder.mkdir(parents=True)
    for t in range(n):
        write_frame(folder, t, [person(80 + t, 70)])
    write_manifest(work, pd.DataFrame({"video_id": ["clip"], "split": "train", "path": [str(video)]}))
    store = Store(work)
    ingest_openpose(store, "clip", folder)
    return store


def test_extraction_binds_found_keypoints_and_training_data_reads_them(tmp_path, work, tiny_dinov2):
    store = openpose_workspace(tmp_path, work)
    config = ExtractConfig(keypoints="openpose-json", frames="dinov2", frames_model=str(tiny_dinov2),
                           frames_size=SIZE, frames_every=3, patches_dim=8)
    assert extract_all(work, config)["ok"] == 1, read_status(work)
    patch, idx, pose = store.load("clip", "pose_patch"), store.load("clip", "frames_idx"), store.load("clip", "pose")
    assert patch.shape == (len(idx), N_KEYPOINTS, 8) and patch.dtype == np.float16 and idx.tolist() == [0, 3, 6, 9]
    found = pose[idx, :, 2] > 0.05
    assert np.isfinite(patch[found]).all() and np.isnan(patch[~found]).all()        # missing points stay masked
    assert store.meta("clip", "pose_patch")["params"]["patches"]["width"] == 8
    assert extract_all(work, config)["skipped"] == 1                                 # current: nothing redone

    sampling = SamplingConfig(n_pose=6, offsets=[2], votes=1)
    data = VideoDataset(work, pd.DataFrame({"video_id": ["clip"]}), ["pose"], sampling, train=False, seed=0,
                        dims={"pose": 4}, encoders={"pose": "pose-patch"})
    sample = data[0]
    assert sample["pose_patch"].shape == (6, N_KEYPOINTS, 8)
    assert not sample["pose_patch_mask"][~sample["pose_point_mask"]].any()
    assert sample["pose_patch_mask"].any() and np.isfinite(sample["pose_patch"]).all()
    assert "pose_patch" not in VideoDataset(work, pd.DataFrame({"video_id": ["clip"]}), ["pose"], sampling,
                                            train=False, seed=0, dims={"pose": 4},
                                            encoders={"pose": "pose-mlp"})[0]


def test_patches_need_dinov2_tokens():
    with pytest.raises(UserError, match="patches_dim needs DINOv2"):
        ExtractConfig(frames="xclip", patches_dim=8).check()


def test_xclip_loads_from_a_local_tiny_config_and_embeds_clips(tiny_xclip):
    embedder = XClipEmbedder(str(tiny_xclip), size=32)
    assert (embedder.clip_frames, embedder.dim) == (4, 12)
    crops = [np.random.default_rng(i).integers(0, 255, (40, 30, 3), dtype=np.uint8) for i in range(6)]
    rows = embedder(crops)                                      # 6 crops: one clip of 4, one of 2 padded to 4
    assert rows.shape == (2, 12) and np.isfinite(rows).all()
    np.testing.assert_allclose(embedder(crops[:4]), rows[:1], rtol=1e-4, atol=1e-5)  # clips are independent
    assert clip_rows([0, 5, 10, 15, 20, 25], 4) == [10, 25]
    with pytest.raises(UserError, match="takes 32 px"):
        XClipEmbedder(str(tiny_xclip), size=224)
    with pytest.raises(UserError, match="could not be loaded as X-CLIP"):
        XClipEmbedder(str(tiny_xclip.parent / "nothing-here"), size=32)


def test_extraction_writes_xclip_clips_beside_dinov2_frames(tmp_path, work, tiny_dinov2, tiny_xclip):
    store = openpose_workspace(tmp_path, work, n=20)
    base = dict(keypoints="openpose-json", frames_every=2)
    assert extract_all(work, ExtractConfig(frames="dinov2", frames_model=str(tiny_dinov2), frames_size=SIZE,
                                           **base))["ok"] == 1
    assert extract_all(work, ExtractConfig(frames="xclip", frames_model=str(tiny_xclip), frames_size=32,
                                           **base))["ok"] == 1, read_status(work)
    clips, idx = store.load("clip", "frames_xclip"), store.load("clip", "frames_xclip_idx")
    assert clips.shape == (3, 12) and idx.tolist() == [4, 12, 18]     # 10 crops: clips of 4, 4 and 2 (padded)
    assert store.meta("clip", "frames_xclip")["params"]["model"].startswith("xclip:")
    assert store.load("clip", "frames").shape == (10, 32)              # DINOv2 frames kept beside
    sampling = SamplingConfig(n_frames=4, votes=1, min_frame_gap=0)
    sample = VideoDataset(work, pd.DataFrame({"video_id": ["clip"]}), ["frames"], sampling, train=False, seed=0,
                          dims={"frames": 12}, encoders={"frames": "frames-xclip"})[0]
    assert sample["frames"].shape == (4, 12) and sample["frames_mask"].sum() == 3


def test_frame_encoder_study_runs_xclip_only_when_the_workspace_has_it(work, capsys):
    from hiddenemo.ablate import STUDIES

    names = lambda: [name for name, _, _ in STUDIES["frame-encoders"](["frames"], work)]   # noqa: E731
    assert not any("X-CLIP (" in n for n in names())
    assert "no X-CLIP features in this workspace" in capsys.readouterr().out
    (work / "store" / "v1").mkdir(parents=True)
    np.save(work / "store" / "v1" / "frames_xclip.npy", np.zeros((2, 12), np.float16))
    assert "X-CLIP (16-frame clips, pooled)" in names()
    modalities = {name: overlay["model"]["encoders"] for name, overlay, _ in STUDIES["modalities"](["pose"], work)}
    assert modalities["pose + bound patches (pose-patch)"] == {"pose": "pose-patch"}
