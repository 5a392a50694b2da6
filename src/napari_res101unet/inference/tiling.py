"""Tile planning (numpy only).

A :class:`TilePlan` says how each 2D slice is cut: one whole-image pass when it fits the
memory budget and is not slower, overlapping tiles otherwise. Blending the tiles back is
:mod:`.blending`'s job.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..config import BLENDINGS, NETWORK_MULTIPLE, SEGMENT_DEFAULTS

MIN_TILE = 128


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
    overlap: float = SEGMENT_DEFAULTS["overlap"],
    batch_size: int | None = None,
    blending: str = SEGMENT_DEFAULTS["blending"],
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
