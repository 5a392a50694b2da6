"""Tile planning, blending weights and memory-bounded accumulation (numpy only).

A :class:`TilePlan` says how each 2D slice is cut: one whole-image pass when it fits the
memory budget and is not slower, overlapping tiles otherwise. A :class:`SliceAccumulator`
blends tile outputs into a band of rows as tall as one tile and hands finished rows out,
so memory grows with the image width, not its area.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .config import NETWORK_MULTIPLE

MIN_TILE = 128
BLENDINGS = ("gaussian", "constant")


def round_up(n: int, multiple: int = NETWORK_MULTIPLE) -> int:
    return -(-int(n) // multiple) * multiple


def axis_starts(length: int, tile: int, overlap: float) -> tuple[int, ...]:
    """Tile origins covering ``length`` with tiles of ``tile`` sharing ``>= overlap * tile``.

    One tile (origin 0, padded past the end) when ``tile >= length``; otherwise the fewest
    tiles that keep the overlap, spread evenly from 0 to ``length - tile``.
    """
    if tile >= length:
        return (0,)
    shared = math.ceil(overlap * tile)
    stride = max(1, tile - shared)
    n = 1 + math.ceil((length - tile) / stride)
    return tuple(round(i * (length - tile) / (n - 1)) for i in range(n))


@dataclass(frozen=True)
class TilePlan:
    """How the slices of one image are cut into network inputs.

    Attributes
    ----------
    shape : (Y, X)
        Slice size.
    n_slices : int
        Number of 2D slices.
    tile : (TY, TX)
        Network input size (multiples of 32).
    starts_y, starts_x : tuple of int
        Tile origins in slice coordinates.
    batch_size : int
        Tiles per forward pass.
    overlap : float
        Requested overlap fraction.
    blending : str
        ``gaussian`` or ``constant``.
    """

    shape: tuple[int, int]
    n_slices: int
    tile: tuple[int, int]
    starts_y: tuple[int, ...]
    starts_x: tuple[int, ...]
    batch_size: int
    overlap: float
    blending: str = "gaussian"

    @property
    def tiles_per_slice(self) -> int:
        return len(self.starts_y) * len(self.starts_x)

    @property
    def total_tiles(self) -> int:
        return self.tiles_per_slice * self.n_slices

    @property
    def whole_image(self) -> bool:
        return self.tiles_per_slice == 1

    @property
    def pixels_processed(self) -> int:
        return self.total_tiles * self.tile[0] * self.tile[1]

    def windows(self) -> list[tuple[int, int]]:
        """Tile origins of one slice in row-major order."""
        return [(y, x) for y in self.starts_y for x in self.starts_x]

    def describe(self) -> str:
        ty, tx = self.tile
        if self.whole_image:
            what = f"whole slice in one {ty}x{tx} pass"
        else:
            what = (
                f"{len(self.starts_y)}x{len(self.starts_x)} tiles of {ty}x{tx}, "
                f"overlap {self.overlap:.0%}, {self.blending} blending"
            )
        slices = f" x {self.n_slices} slices" if self.n_slices > 1 else ""
        return f"{what}{slices}, batch {self.batch_size}"


@dataclass(frozen=True)
class CostModel:
    """Relative cost of a forward pass, for choosing among plans.

    Each forward pass of ``batch`` tiles costs its pixels times ``1 + slope * max(0,
    batch pixels / knee - 1)``, plus ``per_call``: on CPUs throughput falls once a pass's
    activations outgrow the caches, whether the pixels come as one big tile or a batch
    (measured on the Res101_UNet, 2 cores: about 0.37 MP/s from 0.15 to 0.6 MP per pass,
    0.33 at 0.8-1.8 MP, 0.23 at 4 MP). GPUs only gain from bigger passes.
    """

    knee: float = 6e5
    slope: float = 0.12
    per_call: float = 1.3e4

    def __call__(self, tile_pixels: int, tiles: int, batch: int) -> float:
        penalty = 1 + self.slope * max(0.0, tile_pixels * batch / self.knee - 1)
        return tiles * tile_pixels * penalty + math.ceil(tiles / batch) * self.per_call


CPU_COST = CostModel()
GPU_COST = CostModel(knee=float("inf"), slope=0.0, per_call=2e5)


def plan_tiles(
    shape: tuple[int, int],
    n_slices: int = 1,
    *,
    budget_bytes: float,
    bytes_per_pixel: float,
    tile_size: int | tuple[int, int] | None = None,
    overlap: float = 0.25,
    batch_size: int | None = None,
    blending: str = "gaussian",
    cost: CostModel = CPU_COST,
    max_batch: int = 16,
) -> TilePlan:
    """Choose tile size and batch for ``n_slices`` slices of ``shape`` within a memory budget.

    Parameters
    ----------
    shape : (Y, X)
        Slice size.
    budget_bytes : float
        Memory the forward pass may use (activations of one batch).
    bytes_per_pixel : float
        Activation memory per input pixel of the network.
    tile_size : int or (int, int), optional
        Fix the tile (rounded up to a multiple of 32); None plans it.
    overlap : float
        Fraction of a tile shared with each neighbour, in ``[0, 0.9]``.
    batch_size : int, optional
        Fix the batch; None plans it.
    """
    _check_plan_args(shape, overlap, blending, tile_size, batch_size)
    limit_px = max(budget_bytes / bytes_per_pixel, MIN_TILE * MIN_TILE)
    if tile_size is not None:
        sizes = (tile_size, tile_size) if isinstance(tile_size, int) else tuple(tile_size)
        ys, xs = _axis_options(shape[0], [sizes[0]]), _axis_options(shape[1], [sizes[1]])
    else:
        side = int(math.sqrt(limit_px)) // NETWORK_MULTIPLE * NETWORK_MULTIPLE
        sides = list(range(256, max(side, 256) + 1, NETWORK_MULTIPLE))
        ys, xs = _axis_options(shape[0], sides), _axis_options(shape[1], sides)
    best: tuple[float, TilePlan] | None = None
    for ty in ys:
        for tx in xs:
            if tile_size is None and ty * tx > limit_px:
                continue
            tiled = _make_plan(shape, n_slices, (ty, tx), overlap, blending)
            most = _auto_batch(tiled, limit_px, max_batch)
            for batch in [batch_size] if batch_size else _batch_options(most):
                score = cost(ty * tx, tiled.total_tiles, batch)
                if best is None or score < best[0]:
                    best = (score, _with_batch(tiled, batch))
    if best is None:  # nothing fits: smallest tile
        plan = _make_plan(shape, n_slices, (MIN_TILE, MIN_TILE), overlap, blending)
        return _with_batch(plan, batch_size or 1)
    return best[1]


def _check_plan_args(shape, overlap, blending, tile_size, batch_size) -> None:
    if len(shape) != 2 or min(shape) < 1:
        raise ValueError(f"slice shape must be two positive sizes, got {shape}")
    if not 0 <= overlap <= 0.9:
        raise ValueError(f"overlap must be a fraction in [0, 0.9], got {overlap}")
    if blending not in BLENDINGS:
        raise ValueError(f"blending must be one of {BLENDINGS}, got {blending!r}")
    sizes = (tile_size,) if isinstance(tile_size, int) else (tile_size or ())
    for size in sizes:
        if isinstance(size, bool) or not isinstance(size, int) or size < NETWORK_MULTIPLE:
            raise ValueError(f"tile_size must be an int >= {NETWORK_MULTIPLE}, got {tile_size!r}")
    if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"batch_size must be a positive int or None, got {batch_size!r}")


def _axis_options(length: int, sides: list[int]) -> list[int]:
    """Tile lengths worth trying along one axis: the whole axis, or the given sizes."""
    whole = round_up(length)
    options = {min(round_up(s), whole) for s in sides}
    return sorted(options)


def _make_plan(shape, n_slices, tile, overlap, blending) -> TilePlan:
    sy = axis_starts(shape[0], tile[0], overlap)
    sx = axis_starts(shape[1], tile[1], overlap)
    return TilePlan(tuple(shape), n_slices, tuple(tile), sy, sx, 1, overlap, blending)


def _auto_batch(plan: TilePlan, limit_px: float, max_batch: int) -> int:
    fit = int(limit_px // (plan.tile[0] * plan.tile[1]))
    return max(1, min(fit, max_batch, plan.total_tiles))


def _batch_options(most: int) -> list[int]:
    """Batches worth comparing: powers of two up to ``most``, and ``most`` itself."""
    options = {most}
    b = 1
    while b < most:
        options.add(b)
        b *= 2
    return sorted(options)


def _with_batch(plan: TilePlan, batch: int) -> TilePlan:
    return TilePlan(
        plan.shape,
        plan.n_slices,
        plan.tile,
        plan.starts_y,
        plan.starts_x,
        batch,
        plan.overlap,
        plan.blending,
    )


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
    """

    def __init__(self, plan: TilePlan, channels: int, emit: Callable) -> None:
        self.plan, self.emit = plan, emit
        self.height, self.width = plan.shape
        self.band = min(plan.tile[0], self.height)
        self.acc = np.zeros((channels, self.band, self.width), np.float32)
        self.wsum = np.zeros((self.band, self.width), np.float32)
        self.top = 0
        self.weights = blend_weights(plan)

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
            self.acc[:, :keep] = self.acc[:, n:]
            self.wsum[:keep] = self.wsum[n:]
        self.acc[:, max(keep, 0) :] = 0
        self.wsum[max(keep, 0) :] = 0
        self.top = until
