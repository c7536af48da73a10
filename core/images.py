"""Image grids: many small images as one picture (per-epoch samples, nearest.png, the dashboard). Numpy only."""

from __future__ import annotations

import math

import numpy as np


def make_grid(images, nrow: int | None = None, pad: int = 2, scale: int = 1) -> np.ndarray:
    """(B, H, W) or (B, 1, H, W) images, floats in [0, 1] or uint8 -> one uint8 (rows, cols) image with `pad`
    black pixels between, `nrow` images per row (default: a square), each pixel repeated `scale` times a side."""
    arr = np.asarray(images)
    if arr.ndim == 4:
        arr = arr[:, 0]
    if arr.dtype != np.uint8:
        arr = (np.clip(arr.astype(np.float32), 0, 1) * 255).round().astype(np.uint8)
    b, h, w = arr.shape
    nrow = nrow or max(1, int(math.ceil(math.sqrt(b))))
    rows = int(math.ceil(b / nrow))
    grid = np.zeros((rows * (h + pad) + pad, nrow * (w + pad) + pad), dtype=np.uint8)
    for i in range(b):
        r, c = divmod(i, nrow)
        grid[pad + r * (h + pad): pad + r * (h + pad) + h, pad + c * (w + pad): pad + c * (w + pad) + w] = arr[i]
    return np.kron(grid, np.ones((scale, scale), dtype=np.uint8)) if scale > 1 else grid
