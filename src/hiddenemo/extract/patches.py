"""Keypoints bound to the DINOv2 patches they fall in (the paper's future work 2).

The forward pass that gives a frame's CLS embedding also gives its grid of patch tokens. Each found
keypoint of that frame, placed in the letterboxed person crop, reads the grid bilinearly at its
position: a visual embedding of that point (a cheek, a fingertip), beside its position and offsets.

    crop (h, w) --letterbox--> (S, S) --backbone--> tokens (1 + g*g, D) --> grid (g, g, D)
    keypoint (x, y) in crop pixels --> (u, v) in input pixels --bilinear over patch centres--> (D,)
    --fixed projection--> (width,)      stored as `pose_patch` (T', 137, width) float16, NaN = not found

The rows of `pose_patch` are the rows of `frames` (the same crops, `frames_idx` says which frames).

Compression: a random orthonormal projection D -> width drawn from a fixed seed. It depends on no
video at all (fitted neither on training videos nor, transductively, on target ones), keeps inner
products approximately (Johnson-Lindenstrauss), and is the same for every workspace, so arrays from
two extractions can be compared. The `pose-patch` encoder learns its own projection on top of it.
"""
from __future__ import annotations

import hashlib

import numpy as np

from hiddenemo.data.keypoints import MIN_CONFIDENCE
from hiddenemo.extract.embeddings import letterbox_geometry, pool

PROJECTION_SEED = 0
ARRAY = "pose_patch"


def token_grid(tokens: np.ndarray, size: int, patch: int) -> np.ndarray:
    """(B, 1 + g*g, D) tokens -> (B, g, g, D) patch grid, row-major as the backbone emits it."""
    g = size // patch
    if tokens.shape[1] != 1 + g * g:
        raise ValueError(f"expected 1 + {g}x{g} tokens from a {size}px input with {patch}px patches, got "
                         f"{tokens.shape[1]} (a backbone with register tokens is not supported)")
    return tokens[:, 1:].reshape(tokens.shape[0], g, g, tokens.shape[2])


def to_input_pixels(points: np.ndarray, h: int, w: int, size: int) -> np.ndarray:
    """(V, 2) x, y in pixels of an (h, w) crop -> the same points in the size x size letterboxed input."""
    nh, nw, top, left = letterbox_geometry(h, w, size)
    return np.stack([left + points[:, 0] * nw / w, top + points[:, 1] * nh / h], axis=1)


def sample_bilinear(grid: np.ndarray, uv: np.ndarray, patch: int) -> np.ndarray:
    """Grid (g, g, D) read at (V, 2) input-pixel positions -> (V, D): bilinear between the four
    nearest patch centres (clamped at the border); NaN rows for NaN positions."""
    g = grid.shape[0]
    ok = np.isfinite(uv).all(1)
    pos = np.clip(np.nan_to_num(uv) / patch - 0.5, 0, g - 1)             # (V, 2) in patch-centre units
    lo = np.minimum(np.floor(pos).astype(np.int64), g - 2 if g > 1 else 0)
    hi = np.minimum(lo + 1, g - 1)
    fx, fy = (pos[:, 0] - lo[:, 0])[:, None], (pos[:, 1] - lo[:, 1])[:, None]   # (V, 1)
    top = grid[lo[:, 1], lo[:, 0]] * (1 - fx) + grid[lo[:, 1], hi[:, 0]] * fx    # grid is [row = y, col = x]
    bottom = grid[hi[:, 1], lo[:, 0]] * (1 - fx) + grid[hi[:, 1], hi[:, 0]] * fx
    out = top * (1 - fy) + bottom * fy
    out[~ok] = np.nan
    return out


def projection(dim: int, width: int, seed: int = PROJECTION_SEED) -> np.ndarray:
    """(dim, width) matrix with orthonormal columns, the same for every call with these arguments."""
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((dim, width)))
    return q.astype(np.float32)


def pixel_points(pose_row: np.ndarray, box_row: np.ndarray, min_conf: float = MIN_CONFIDENCE) -> np.ndarray:
    """A stored pose row (137, 3) normalised to its box (5,) -> (137, 2) frame pixels, NaN = not found."""
    pose_row = np.asarray(pose_row, np.float32)
    x0, y0, x1, y1 = np.asarray(box_row[:4], np.float32)
    xy = np.stack([x0 + pose_row[:, 0] * (x1 - x0), y0 + pose_row[:, 1] * (y1 - y0)], axis=1)
    xy[~(pose_row[:, 2] > min_conf)] = np.nan
    return xy


class PatchBinder:
    """Crops and their keypoints in, (CLS-or-mean embeddings (B, D), bound patches (B, V, width)) out,
    from one forward pass of a `FrameEmbedder`'s DINOv2 backbone."""

    def __init__(self, embedder, width: int):
        backbone = embedder.backbone
        self.embedder, self.size, self.patch = embedder, backbone.size, backbone.patch
        self.width = min(width, embedder.dim)
        self.matrix = projection(embedder.dim, self.width) if self.width < embedder.dim else None
        digest = hashlib.sha1(self.matrix.tobytes()).hexdigest()[:12] if self.matrix is not None else None
        # The recipe goes into the array's sidecar: another width, seed or backbone redoes the array.
        self.recipe = {"backbone": embedder.name, "size": self.size, "patch": self.patch,
                       "sampling": "bilinear over patch centres", "width": self.width,
                       "projection": None if self.matrix is None else
                       {"kind": "random orthonormal", "seed": PROJECTION_SEED, "sha1": digest}}

    def __call__(self, crops: list[np.ndarray], points: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        tokens = self.embedder.tokens(crops)                                    # (B, 1 + g*g, D)
        grids = token_grid(tokens, self.size, self.patch)                       # (B, g, g, D)
        bound = np.stack([sample_bilinear(grid, to_input_pixels(p, *crop.shape[:2], self.size), self.patch)
                          for grid, p, crop in zip(grids, points, crops)])      # (B, V, D)
        if self.matrix is not None:
            bound = bound @ self.matrix                                         # NaN rows stay NaN
        return pool(tokens, self.embedder.pool_how).astype(np.float32), bound.astype(np.float32)
