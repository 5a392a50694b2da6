"""Running the blocks of :func:`~.blockwise.segment_blocks`: here, or on dask.distributed.

:func:`run_block` is the task: it reads the block's halo (or gets it from a dask array),
predicts with the process's model (:func:`~napari_res101unet.registry.open_model`), blends, and
writes the labels into the store itself; it returns only the block index. On a cluster
the scheduler recomputes the blocks of a worker that dies (dask's own rescheduling, up
to ``distributed.scheduler.allowed-failures`` times); a block that still fails is
reported with the others, never silently left out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..config import SegmentSettings
from ..errors import Cancelled, summarize
from ..io.label_store import write_block
from ..io.large import LargeSource
from .blending import blend_weights, extract_tile
from .tiling import TilePlan

_FORWARDS: dict[tuple, Any] = {}


@dataclass(frozen=True)
class BlockTask:
    """Everything a worker needs for the blocks of one image (small and picklable)."""

    source: LargeSource
    predictor: Any  # a checkpoint path / "untrained" (see registry.open_model) or a callable
    settings: SegmentSettings  # device, threshold, TTA, precision (tiles: in ``plan``)
    normalizer: Any
    in_channels: int
    plan: TilePlan
    block: tuple[int, int]
    target: str
    stacked: bool
    dtype: str
    spec: Any = None  # the model's ModelSpec (its instance head, learned object size)


def block_labels(task: BlockTask, index: tuple[int, int, int], raw: np.ndarray, predict) -> Any:
    """Labels of one block from its raw halo region ``(RY, RX, C)`` (see :func:`halo`)."""
    from ..preprocess.normalize import adapt_channels

    plan, (_, y0, x0) = task.plan, index
    (h, w), (ty, tx) = task.source.yx, plan.tile
    y1, x1 = min(y0 + task.block[0], h), min(x0 + task.block[1], w)
    ys, xs, (r0, c0) = _touching(plan, y0, y1, x0, x1)
    data, _ = adapt_channels(raw, task.in_channels)
    weights = blend_weights(plan)
    windows = [(y, x) for y in ys for x in xs]
    acc, wsum = None, np.zeros((y1 - y0, x1 - x0), np.float32)
    for n in range(0, len(windows), plan.batch_size):
        batch = windows[n : n + plan.batch_size]
        tiles = np.stack([extract_tile(data, y - r0, x - c0, (ty, tx)) for y, x in batch])
        out = predict(task.normalizer(tiles))
        if acc is None:
            acc = np.zeros((out.shape[1], y1 - y0, x1 - x0), np.float32)
        for (y, x), o in zip(batch, out):
            a0, a1, b0, b1 = max(y, y0), min(y + ty, y1), max(x, x0), min(x + tx, x1)
            wt = weights[a0 - y : a1 - y, b0 - x : b1 - x]
            inside = (slice(a0 - y0, a1 - y0), slice(b0 - x0, b1 - x0))
            acc[(slice(None), *inside)] += o[:, a0 - y : a1 - y, b0 - x : b1 - x] * wt
            wsum[inside] += wt
    p = acc / wsum
    labels = (p[0] > task.settings.threshold) if p.shape[0] == 1 else np.argmax(p, axis=0)
    return labels.astype(task.dtype)


def _touching(plan: TilePlan, y0: int, y1: int, x0: int, x1: int):
    """Tile origins of the global grid that touch the block, and the halo's origin."""
    ty, tx = plan.tile
    ys = [y for y in plan.starts_y if y < y1 and y + ty > y0]
    xs = [x for x in plan.starts_x if x < x1 and x + tx > x0]
    return ys, xs, (ys[0], xs[0])


def halo(task: BlockTask, index: tuple[int, int, int]) -> tuple[tuple[int, int], tuple[int, int]]:
    """``((row0, row1), (col0, col1))`` of the source the block's tiles read."""
    plan, (_, y0, x0) = task.plan, index
    (h, w), (ty, tx) = task.source.yx, plan.tile
    y1, x1 = min(y0 + task.block[0], h), min(x0 + task.block[1], w)
    ys, xs, _ = _touching(plan, y0, y1, x0, x1)
    return (ys[0], min(ys[-1] + ty, h)), (xs[0], min(xs[-1] + tx, w))


def run_block(task: BlockTask, index: tuple[int, int, int], raw: Any = None) -> Any:
    """Compute and write one block; returns ``index``, or with ``instances`` the block's
    :class:`~.block_objects.BlockObjects` (its objects are written as local ids).

    ``raw`` is the halo region when the source is a dask array (computed by dask as this
    task's dependency); store sources are read here, by the process running the task.
    """
    rows, cols = halo(task, index)
    raw = task.source.read(index[0], rows, cols) if raw is None else task.source.arrange(raw)
    from ..device import fixed_shape_kernels

    forward = _forward(task)
    with fixed_shape_kernels(forward.device):  # cuDNN autotuning for the tile, as segment()
        labels = block_labels(task, index, raw, forward)
    found: Any = index
    if task.settings.instances:
        from .block_objects import local_objects

        labels, found = local_objects(labels, task.settings, task.spec)
    s, y0, x0 = index
    sel = (slice(y0, y0 + labels.shape[0]), slice(x0, x0 + labels.shape[1]))
    write_block(task.target, ((s,) if task.stacked else ()) + sel, labels)
    return found


def _forward(task: BlockTask):
    """``predict(batch) -> probabilities`` numpy, built once per process and predictor."""
    import torch

    from .forward import Forward, inference_module

    s = task.settings
    key = (_predictor_key(task.predictor), s.device, s.tta, s.mixed_precision)
    if key not in _FORWARDS:
        predictor = task.predictor
        if isinstance(predictor, str):
            from ..registry import open_model
            from .cluster import worker_device

            model = open_model(predictor, worker_device(s.device))
            dev = next(model.parameters()).device
            predictor = inference_module(model, dev, True)
        elif isinstance(predictor, torch.nn.Module):
            dev = next(predictor.parameters()).device
            predictor = inference_module(predictor, dev, True)
        else:
            dev = torch.device("cpu")
        mixed = s.mixed_precision and dev.type == "cuda"
        _FORWARDS[key] = Forward(predictor, dev, mixed, s.tta)
    return _FORWARDS[key]


def _predictor_key(predictor: Any) -> Any:
    """Checkpoint paths and module-level functions by name (equal across unpickled
    copies of a task), anything else by identity."""
    if isinstance(predictor, str):
        return predictor
    name = getattr(predictor, "__qualname__", None)
    if name and "<" not in name:
        return f"{getattr(predictor, '__module__', '')}.{name}"
    return id(predictor)


def run_all(
    task: BlockTask,
    source: LargeSource,
    indices: list[tuple[int, int, int]],
    client: Any,
    progress: Callable[[int, int], None] | None,
    should_stop: Callable[[], bool] | None,
    results: dict | None = None,
) -> list[tuple[tuple[int, int, int], str]]:
    """Run every block; ``[(index, reason)]`` of the blocks that were not written. What
    each block returns goes into ``results`` (by index) when given."""
    results = {} if results is None else results
    if client is None:
        return _run_here(task, source, indices, progress, should_stop, results)
    return _run_on_cluster(task, source, indices, client, progress, should_stop, results)


def _region(task: BlockTask, source: LargeSource, index) -> Any:
    """The dask array of a block's halo (dask sources), else None (read by the task)."""
    if source.kind != "dask":
        return None
    rows, cols = halo(task, index)
    return source.dask_array[source.selection(index[0], rows, cols)]


def _run_here(task, source, indices, progress, should_stop, results) -> list:
    failed = []
    for done, index in enumerate(indices, 1):
        if should_stop is not None and should_stop():
            raise Cancelled("segmentation cancelled")
        region = _region(task, source, index)
        try:
            results[index] = run_block(task, index, None if region is None else region.compute())
        except (MemoryError, Cancelled):
            raise
        except Exception as exc:
            failed.append((index, summarize(exc)))
        if progress is not None:
            progress(done, len(indices))
    return failed


def _run_on_cluster(task, source, indices, client, progress, should_stop, results) -> list:
    from distributed import as_completed

    futures = {}
    for index in indices:
        region = _region(task, source, index)
        arg = None if region is None else client.compute(region)
        future = client.submit(run_block, task, index, arg, pure=False, key=_key(index))
        futures[future] = index
    failed, done = [], 0
    try:
        for future in as_completed(futures):
            if should_stop is not None and should_stop():
                raise Cancelled("segmentation cancelled")
            if future.status != "finished":
                failed.append((futures[future], summarize(future.exception())))
            else:
                results[futures[future]] = future.result()
            done += 1
            if progress is not None:
                progress(done, len(indices))
    finally:
        client.cancel(list(futures))
    return failed


def _key(index: tuple[int, int, int]) -> str:
    import uuid

    return f"res101unet-block-{index[0]}-{index[1]}-{index[2]}-{uuid.uuid4().hex[:8]}"
