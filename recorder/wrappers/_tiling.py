"""Tiling the sub-environments' frames into one video frame, as gymnasium's vector RecordVideo."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np


class Tiler:
    """Tiles frames into one reused buffer.

    Args:
        video_aspect_ratio: the desired (width, height) ratio of the tiled frame.
    """

    def __init__(self, video_aspect_ratio: tuple[float, float]) -> None:
        self.aspect = _aspect(video_aspect_ratio)
        self._grid: np.ndarray[Any, Any] | None = None

    def grid(self, frames: Sequence[Any]) -> tuple[int, int]:
        """(rows, cols) for tiling *frames*: see :func:`grid_shape`."""
        h, w = np.asarray(frames[0]).shape[:2]
        return grid_shape(len(frames), h, w, self.aspect)

    def tile(self, frames: Sequence[Any], rows: int, cols: int) -> np.ndarray[Any, Any]:
        """Tile *frames* into the buffer (the Recorder copies it before returning)."""
        first = np.asarray(frames[0])
        h, w = first.shape[:2]
        shape = (rows * h, cols * w, *first.shape[2:])
        grid = self._grid
        if grid is None or grid.shape != shape or grid.dtype != first.dtype:
            grid = self._grid = np.zeros(shape, dtype=first.dtype)  # blank tiles stay black
        for idx, frame in enumerate(frames):
            r, c = divmod(idx, cols)
            grid[r * h : (r + 1) * h, c * w : (c + 1) * w] = frame
        return grid


def grid_shape(n: int, h: int, w: int, aspect: float) -> tuple[int, int]:
    """(rows, cols) of the tiling of *n* frames of h x w closest to the *aspect* ratio (w/h).

    gymnasium's rule: the best of the exact grids with rows <= sqrt(n). When that leaves only
    the 1xn strip (n prime), grids whose last row is incomplete are considered too, still with
    rows <= cols and no empty row; ties go to fewer blank tiles.
    """
    best_rows, best_cols = 1, n
    min_diff = math.inf
    for rows in range(1, int(n**0.5) + 1):
        if n % rows == 0:
            cols = n // rows
            diff = abs(cols * w / (rows * h) - aspect)
            if diff < min_diff:
                min_diff = diff
                best_rows, best_cols = rows, cols
    if best_rows > 1 or n < 3 or any(n % r == 0 for r in range(2, int(n**0.5) + 1)):
        return best_rows, best_cols
    best_blank = 0
    for rows in range(2, n + 1):
        cols = -(-n // rows)
        if rows > cols:
            break
        if -(-n // cols) != rows:
            continue  # a whole row would be blank
        diff = abs(cols * w / (rows * h) - aspect)
        blank = rows * cols - n
        if diff < min_diff or (diff == min_diff and blank < best_blank):
            min_diff, best_blank = diff, blank
            best_rows, best_cols = rows, cols
    return best_rows, best_cols


def _aspect(ratio: tuple[float, float]) -> float:
    try:
        width, height = ratio
        value = float(width) / float(height)
    except (TypeError, ValueError, ZeroDivisionError) as e:
        raise ValueError(f"video_aspect_ratio must be (width, height) > 0, got {ratio!r}") from e
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"video_aspect_ratio must be (width, height) > 0, got {ratio!r}")
    return value
