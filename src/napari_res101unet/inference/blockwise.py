"""Blockwise segmentation of images larger than memory, in this process or on dask.distributed.

The labels are cut into blocks (one zarr chunk each). Every block computes the tiles of the
image's *global* tile grid that touch it (:func:`~.tiling.axis_starts`), reading the halo
those tiles need from the source, and blends them with the same Gaussian weights in the
same order as :func:`~.segment.segment`, so the labels equal the in-memory ones (with the
same tile size, overlap, threshold and a deterministic predictor). Intensities are
normalised with the statistics :func:`~.data.make_normalizer` takes from the whole image:
the same strided sample of a few million pixels, read lazily once (one pass over the
chunks) before the blocks run. Each block is written straight into the output store by the
process that computed it; only block indices and errors come back.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..config import BlockwiseSettings, SegmentSettings, settings_with, split_fields
from ..errors import summarize
from ..io import label_store
from ..io.large import LargeSource, describe, open_source
from .block_runner import BlockTask, run_all
from .tiling import TilePlan, plan_tiles

__all__ = ["BlockTask", "BlocksFailed", "BlockwiseResult", "block_indices", "segment_blocks"]


class BlocksFailed(RuntimeError):
    """Some blocks were not written; ``missing`` lists them as ``(slice, row, col)``."""

    def __init__(self, message: str, missing: list[tuple[int, int, int]]) -> None:
        super().__init__(message)
        self.missing = missing


@dataclass
class BlockwiseResult:
    """Where the labels are and how they were made."""

    path: str
    shape: tuple[int, ...]
    blocks: int
    plan: TilePlan
    normalization: str
    seconds: float
    complete: bool = True
    tiles: int = 0  # tile forwards run (edge tiles once per block they touch)
    settings: SegmentSettings | None = None
    blockwise: BlockwiseSettings | None = None
    class_names: list[str] = dataclasses.field(default_factory=list)
    algorithm: tuple[str, str] = ("", "")  # (name, version) of the model, as DICOM names it
    objects: int | None = None  # with ``instances``: objects over the whole image

    @property
    def tile_overhead(self) -> float:
        """Tiles run over the tiles of the in-memory path (1.0: none recomputed)."""
        return self.tiles / max(1, self.plan.total_tiles)


def segment_blocks(
    image: Any,
    model: Any,
    output: str | os.PathLike,
    settings: SegmentSettings | None = None,
    blockwise: BlockwiseSettings | None = None,
    *,
    normalization: str | dict | None = None,
    client: Any = None,
    label_name: str | None = None,
    overwrite: bool = False,
    axes: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    limit_blocks: int | None = None,
    **fields: Any,
) -> BlockwiseResult:
    """Segment a large image block by block into an OME-Zarr labels store.

    Tiles that straddle a block edge are computed by each block they touch (that keeps the
    labels exact without moving tile outputs between workers): about ``((n + 1) / n)**2``
    times the tiles of the in-memory path for ``n`` tile strides per block side (1.2x with
    4096-pixel blocks and 512-pixel tiles at 25 % overlap). Memory per block: about
    ``(block + tile)**2`` input pixels plus 9 bytes per block pixel, besides the network.

    Parameters
    ----------
    image : path, zarr.Array or dask.array.Array
        A zarr / OME-Zarr store (level 0), a big TIFF (read through tifffile's zarr view)
        or a dask array; ``(Y, X)``, ``(Y, X, C)``, ``(Z, Y, X[, C])`` or as ``axes`` say.
    model : str, torch.nn.Module or callable
        A checkpoint path or ``"untrained"`` (each process opens it once with
        :func:`~napari_res101unet.registry.open_model`; the form to use on a cluster), a
        loaded model (in this process only), or a picklable callable from
        ``(B, C, TY, TX)`` tensors to ``(B, K, TY, TX)`` logits.
    output : path
        The labels store to create; with ``label_name``, an OME-Zarr image that receives
        ``labels/label_name``.
    settings, blockwise : SegmentSettings, BlockwiseSettings, optional
        How to segment and how to cut blocks (defaults when None). Their fields may also
        be given as keyword arguments (``block_size=2048``, ``tta=True``), which win; a
        name both have (``tile_size``, ``batch_size``) is the segmentation's.
    client : distributed.Client, optional
        Run the blocks on this cluster; default: the current client if there is one, else
        one block after another in this process.
        With ``instances=True`` the store holds object ids (uint32) unique over the
        image: each block separates its objects, then the objects cut by block edges are
        merged and ids renumbered (see :mod:`.block_objects`); ``result.objects`` counts
        them. A stack's objects are found per slice.
    limit_blocks : int, optional
        For benchmarks: run only the first ``limit_blocks`` blocks; the store is then
        removed and the result says ``complete=False``.

    Returns
    -------
    BlockwiseResult
        ``path`` of the finished store; its array ``0`` holds the labels (``(Z,) Y, X``).

    Raises
    ------
    FileExistsError
        The output exists and ``overwrite`` is False.
    BlocksFailed
        Blocks failed (listed); nothing is left at ``output``.
    """
    start = time.perf_counter()
    seg_fields, block_fields = split_fields(fields, SegmentSettings, BlockwiseSettings)
    s = settings_with(SegmentSettings, settings, seg_fields)
    b = settings_with(BlockwiseSettings, blockwise, block_fields)
    source = image if isinstance(image, LargeSource) else open_source(image, axes)
    out = Path(output) / "labels" / label_name if label_name else Path(output)
    label_store.check_free(out, overwrite)  # before any model is loaded
    if client is None:
        from .cluster import current_client

        client = current_client()
    predictor, spec, algorithm = _predictor_and_spec(model, source, normalization, client, s)
    normalizer = _normalizer(source, spec)
    tile, batch = b.grid(s)
    plan = plan_tiles(  # the global grid: tile and batch fixed, so no memory budget
        source.yx, source.n_slices, budget_bytes=float(1 << 40), bytes_per_pixel=1.0,
        tile_size=tile, overlap=s.overlap, batch_size=batch, blending=s.blending,
    )  # fmt: skip
    stacked = "z" in source.axes
    block = (min(b.block_size, source.yx[0]), min(b.block_size, source.yx[1]))
    dtype = "uint32" if s.instances else "uint8" if spec.n_labels <= 256 else "uint16"
    target = label_store.create_labels(
        source,
        output,
        chunks=((1,) if stacked else ()) + block,
        dtype=np.dtype(dtype),
        label_name=label_name,
        overwrite=overwrite,
        attrs={"tile": list(plan.tile), "overlap": s.overlap, "block": list(block)},
    )
    task = BlockTask(
        dataclasses.replace(source, dask_array=None), predictor, s, normalizer,
        spec.in_channels, plan, block, target.path, stacked, dtype, spec,
    )  # fmt: skip
    indices = block_indices(source, block)[:limit_blocks]
    found: dict = {}
    run = _execute(task, source, target, (indices, found), client, progress, should_stop)
    shape = tuple(source.shape[source.axes.index(a)] for a in source.spatial_axes)
    made = {"settings": s, "blockwise": b, "class_names": list(spec.class_names),
            "algorithm": algorithm, "tiles": tiles_run(plan, block, indices)}  # fmt: skip
    norm = normalizer.describe()
    if limit_blocks is not None:
        label_store.abandon(target)
        return BlockwiseResult("", shape, len(indices), plan, norm, _since(start), False, **made)
    if s.instances:
        made["objects"] = _stitched(target, found, block, stacked, s, spec)
    record = {"normalization": norm, "blocks": run, "settings": s.as_dict(),
              "blockwise": b.as_dict(), "objects": made.get("objects")}  # fmt: skip
    path = label_store.finish(target, record)
    return BlockwiseResult(str(path), shape, len(indices), plan, norm, _since(start), **made)


def _stitched(target, found, block, stacked, s, spec) -> int:
    """Final object ids over the blocks (see :mod:`.block_objects`); the store is removed
    when that fails."""
    from .block_objects import stitch_store

    try:
        return stitch_store(target.path, found, block, stacked, s, spec)
    except BaseException:
        label_store.abandon(target)
        raise


def _execute(task, source, target, blocks, client, progress, should_stop) -> int:
    """Run the blocks ``(indices, results)``; on any failure remove the hidden store (and
    list failed blocks)."""
    indices, results = blocks
    try:
        failed = run_all(task, source, indices, client, progress, should_stop, results)
    except BaseException:  # cancelled, out of memory, interrupted: nothing is left behind
        label_store.abandon(target)
        raise
    if failed:
        label_store.abandon(target)
        where = Path(target.final)
        raise BlocksFailed(_failure_message(failed, where), [f[0] for f in failed])
    return len(indices)


def tiles_run(plan: TilePlan, block: tuple[int, int], indices: list) -> int:
    """How many tile forwards the blocks ``indices`` run (each block: the tiles touching it)."""
    (h, w), (ty, tx) = plan.shape, plan.tile
    total = 0
    for _, y0, x0 in indices:
        y1, x1 = min(y0 + block[0], h), min(x0 + block[1], w)
        ys = sum(1 for y in plan.starts_y if y < y1 and y + ty > y0)
        xs = sum(1 for x in plan.starts_x if x < x1 and x + tx > x0)
        total += ys * xs
    return total


def _since(start: float) -> float:
    return time.perf_counter() - start


def _failure_message(failed: list, output: Any) -> str:
    shown = "; ".join(f"block {idx}: {why}" for idx, why in failed[:5])
    more = f" (and {len(failed) - 5} more)" if len(failed) > 5 else ""
    return (
        f"{len(failed)} block(s) of {output} were not written, so no labels were kept: "
        f"{shown}{more}"
    )


def block_indices(source: LargeSource, block: tuple[int, int]) -> list[tuple[int, int, int]]:
    """``(slice, row0, col0)`` of every block, slice by slice, in row-major order."""
    (h, w), (by, bx) = source.yx, block
    return [
        (s, y, x) for s in range(source.n_slices) for y in range(0, h, by) for x in range(0, w, bx)
    ]


def _predictor_and_spec(model, source: LargeSource, normalization, client, settings):
    """``(what the workers call, ModelSpec, (name, version))``; paths stay paths (each
    process opens them)."""
    from types import SimpleNamespace

    from ..io import algorithm_identity
    from ..model import ModelSpec

    if isinstance(model, (str, os.PathLike)):
        model = str(model)
        spec = _checkpoint_spec(model) if client is not None else None
        if spec is None:  # in this process: the model the blocks will use (cached)
            from ..registry import open_model
            from .cluster import worker_device

            device = worker_device(settings.device) if client is None else "cpu"
            spec = open_model(model, device).spec
        identity = algorithm_identity(SimpleNamespace(spec=spec, checkpoint_path=model))
    elif isinstance(getattr(model, "spec", None), ModelSpec):
        spec, identity = model.spec, algorithm_identity(model)
        if client is not None:
            path = getattr(model, "checkpoint_path", None)
            if path is None:
                raise ValueError(
                    "a model in memory cannot be sent to a cluster; save it (save_model) and "
                    "pass its path"
                )
            model = path
    elif callable(model):
        mode = normalization or "none"
        spec = ModelSpec(in_channels=source.channels, normalization={"mode": mode})
        return model, spec, algorithm_identity(None)
    else:
        raise TypeError(
            f"model must be a checkpoint path, a Res101_UNet or a callable; got "
            f"{type(model).__name__}"
        )
    if normalization is not None:
        mode = {"mode": normalization} if isinstance(normalization, str) else normalization
        spec = ModelSpec.from_dict({**spec.to_dict(), "normalization": dict(mode)})
    return model, spec, identity


def _checkpoint_spec(path: str) -> Any:
    """The spec in a checkpoint's header (no network is built), or None."""
    from ..checkpoint import read_header, spec_from_header
    from ..errors import CheckpointError

    try:
        return spec_from_header(read_header(path), Path(path))
    except (CheckpointError, OSError, ValueError):
        return None


def _normalizer(source: LargeSource, spec) -> Any:
    """The whole-image normaliser, from the same strided sample as in-memory ``segment``."""
    import dask

    from ..preprocess.normalize import adapt_channels, make_normalizer

    data, _ = adapt_channels(source.stack(), spec.in_channels)
    try:  # read here with threads: a TIFF's zarr view does not travel to workers
        with dask.config.set(scheduler="threads"):
            return make_normalizer(data, spec.normalization, spec.in_channels)
    except (OSError, RuntimeError, ValueError) as exc:
        raise ValueError(
            f"{describe(source)} could not be read for its intensity statistics: {summarize(exc)}"
        ) from exc
