"""Time and peak memory of one training step (forward + backward + AdamW step) of the paper-sized
model on this CPU, and how memory grows with the sequence length.

Model: pose-mlp (or `--pose-encoder pose-gcn|gat|gin`) (body / face / hands, N pose frames of 137 x 8 features each, Transformer per group)
+ frames-transformer (N/5 frame embeddings of 768 dims, so 800 at the paper's N = 4000) + text-linear
(one 768-d embedding), concat fusion, width 256, 2 Transformer layers of 4 heads; batch 8.

Each setting runs in a fresh subprocess, and memory is the process's peak resident set size
(`resource.getrusage(...).ru_maxrss`): `peak` is the whole process, `step` is the peak minus what the
process held before the step (model, optimizer, batch). Attention kernels compared:

- `sdpa`: one `F.scaled_dot_product_attention` call (torch picks its fused CPU flash kernel);
- `chunked`: query blocks of 512 with recomputation in backward (`attention="chunked"`);
- `math`: the `sdpa` model forced onto torch's math kernel, which materialises (B, H, N, N) weights;
  only run up to `--math-max` frames because it grows quadratically.

    .venv/bin/python benchmarks/train_step.py                    # the table, N = 1000 ... 8000
    .venv/bin/python benchmarks/train_step.py --lengths 1000 2000 --modes sdpa
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024          # Linux: KiB


def one_step(n_pose: int, mode: str, batch_size: int, depth: int, pose_encoder: str) -> dict:
    import contextlib

    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel

    from hiddenemo.models import FusionModel, build_encoder, focal_loss

    torch.manual_seed(0)
    attention = "chunked" if mode == "chunked" else "sdpa"
    n_frames = n_pose // 5
    model = FusionModel({
        "pose": build_encoder(pose_encoder, point_features=8, depth=depth, attention=attention),
        "frames": build_encoder("frames-transformer", in_dim=768, depth=depth, attention=attention),
        "text": build_encoder("text-linear", in_dim=768),
    }, dim=256).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    B = batch_size
    batch = {
        "pose": torch.randn(B, n_pose, 137, 8), "pose_point_mask": torch.rand(B, n_pose, 137) > 0.1,
        "pose_mask": torch.arange(n_pose)[None, :] < torch.randint(n_pose // 2, n_pose + 1, (B, 1)),
        "frames": torch.randn(B, n_frames, 768),
        "frames_mask": torch.arange(n_frames)[None, :] < torch.randint(n_frames // 2, n_frames + 1, (B, 1)),
        "text": torch.randn(B, 768), "target": (torch.rand(B) > 0.25).float(),
    }
    kernel = sdpa_kernel([SDPBackend.MATH]) if mode == "math" else contextlib.nullcontext()
    before = rss_mib()
    start = time.perf_counter()
    with kernel:
        loss = focal_loss(model(batch), batch["target"])
        loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    seconds = time.perf_counter() - start
    return {"n_pose": n_pose, "n_frames": n_frames, "mode": mode, "seconds": seconds,
            "peak_mib": rss_mib(), "step_mib": rss_mib() - before, "threads": torch.get_num_threads(),
            "params_m": sum(p.numel() for p in model.parameters()) / 1e6, "loss": float(loss)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[1000, 2000, 4000, 8000])
    parser.add_argument("--modes", nargs="+", default=["sdpa", "chunked", "math"],
                        choices=["sdpa", "chunked", "math"])
    parser.add_argument("--math-max", type=int, default=2000, help="longest N for the quadratic math kernel")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--depth", type=int, default=2)
    parser.add_argument("--pose-encoder", default="pose-mlp", help="pose-mlp | pose-gcn | pose-gat | pose-gin")
    parser.add_argument("--child", type=str, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        n_pose, mode = args.child.split(":")
        print(json.dumps(one_step(int(n_pose), mode, args.batch_size, args.depth, args.pose_encoder)))
        return

    rows = []
    print(f"{args.pose_encoder}, batch {args.batch_size}, depth {args.depth}; one fresh process per row "
          "(timings are noisy: other jobs share the 2 cores)", flush=True)
    print(f"{'mode':8} {'pose N':>7} {'frames':>7} {'step s':>8} {'peak MiB':>9} {'step MiB':>9} "
          f"{'MiB/1k frames':>13}", flush=True)
    for mode in args.modes:
        for n in args.lengths:
            if mode == "math" and n > args.math_max:
                continue
            cmd = [sys.executable, __file__, "--child", f"{n}:{mode}", "--batch-size", str(args.batch_size),
                   "--depth", str(args.depth), "--pose-encoder", args.pose_encoder]
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode != 0:
                print(f"{mode:8} {n:7d}  failed (exit {done.returncode}): {done.stderr.strip()[-300:]}",
                      flush=True)
                continue
            row = json.loads(done.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(f"{mode:8} {n:7d} {row['n_frames']:7d} {row['seconds']:8.1f} {row['peak_mib']:9.0f} "
                  f"{row['step_mib']:9.0f} {1000 * row['step_mib'] / n:13.0f}", flush=True)
    if rows:
        print(f"parameters: {rows[0]['params_m']:.2f} M; torch threads: {rows[0]['threads']}")
        print("linear growth = a flat MiB/1k frames column; quadratic = it doubles with each doubling of N")


if __name__ == "__main__":
    main()
