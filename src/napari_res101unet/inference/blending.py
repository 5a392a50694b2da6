"""Blending tile outputs: Gaussian weights, reflect-padded tiles, a band accumulator.

A :class:`SliceAccumulator` blends tile outputs into a band of rows as tall as one tile and
hands finished rows out, so memory grows with the image width, not its area (numpy only).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .tiling import TilePlan


def blend_weights(plan: TilePlan) -> np.ndarray:
    """``(TY, TX)`` float32 weights: a Gaussian (sigma = tile / 8) along axes cut into
    several tiles, flat along axes covered by one tile."""
    axes = []
    for length, n in ((plan.tile[0], len(plan.starts_y)), (plan.tile[1], len(plan.starts_x))):
        if plan.blending == "constant" or n == 1:
            axes.append(np.ones(length, np.float32))
            continue
        centre, sigma = (length - 1) / 2, length / 8
        g = np.exp(-0.5 * ((np.arange(length) - centre) / sigma) ** 2)
        axes.append(np.maximum(g, 1e-4).astype(np.float32))
    return np.outer(axes[0], axes[1])


def reflect_indices(start: int, size: int, length: int) -> np.ndarray | slice:
    """Indices ``start .. start+size`` into an axis of ``length``, mirrored past its ends."""
    if start >= 0 and start + size <= length:
        return slice(start, start + size)
    idx = np.arange(start, start + size)
    if length == 1:
        return np.zeros(size, np.intp)
    period = 2 * (length - 1)
    idx = np.abs(idx) % period
    return np.where(idx >= length, period - idx, idx)


def extract_tile(slice2d: np.ndarray, y: int, x: int, tile: tuple[int, int]) -> np.ndarray:
    """The ``tile``-sized window of ``(Y, X, C)`` data at ``(y, x)``, reflect-padded."""
    rows = reflect_indices(y, tile[0], slice2d.shape[0])
    cols = reflect_indices(x, tile[1], slice2d.shape[1])
    return slice2d[rows][:, cols]


class SliceAccumulator:
    """Blends the tile outputs of one slice and emits finished rows.

    Parameters
    ----------
    plan : TilePlan
        The slice's plan (tiles must be added in ``plan.windows()`` order).
    channels : int
        Channels of each tile output.
    emit : callable
        ``emit(row0, row1, probabilities)`` with ``(channels, row1 - row0, X)`` blended values.
    band : int, optional
        Rows held (at least the tile height; default: the tile height).

    Subclasses change where the arrays live through :meth:`_zeros`, :meth:`_array` and
    :meth:`_shift` (see :mod:`.device_blend`).
    """

    def __init__(
        self, plan: TilePlan, channels: int, emit: Callable, band: int | None = None
    ) -> None:
        self.plan, self.emit = plan, emit
        self.height, self.width = plan.shape
        self.band = min(max(band or 0, plan.tile[0]), self.height)
        self.acc = self._zeros((channels, self.band, self.width))
        self.wsum = self._zeros((self.band, self.width))
        self.top = 0
        self.weights = self._array(blend_weights(plan))

    def _zeros(self, shape: tuple[int, ...]):
        return np.zeros(shape, np.float32)

    def _array(self, values: np.ndarray):
        return values

    def _shift(self, n: int, keep: int) -> None:
        """Move the last ``keep`` rows of the band to its top (``n`` rows were emitted)."""
        self.acc[:, :keep] = self.acc[:, n:]
        self.wsum[:keep] = self.wsum[n:]

    def add(self, y: int, x: int, out: np.ndarray) -> None:
        """Add a ``(channels, TY, TX)`` tile output whose origin is ``(y, x)``."""
        if y > self.top:
            self._flush(min(y, self.height))
        y1, x1 = min(y + out.shape[1], self.height), min(x + out.shape[2], self.width)
        h, w = y1 - y, x1 - x
        weights = self.weights[:h, :w]
        rows = slice(y - self.top, y - self.top + h)
        self.acc[:, rows, x:x1] += out[:, :h, :w] * weights
        self.wsum[rows, x:x1] += weights

    def finish(self) -> None:
        """Emit every row that is left."""
        self._flush(self.height)

    def _flush(self, until: int) -> None:
        n = until - self.top
        if n <= 0:
            return
        self.emit(self.top, until, self.acc[:, :n] / self.wsum[:n])
        keep = self.band - n
        if keep > 0:
            self._shift(n, keep)
        self.acc[:, max(keep, 0) :] = 0
        self.wsum[max(keep, 0) :] = 0
        self.top = until
