"""Inference: tiled, blended, memory-bounded prediction (see :func:`segment`), from one
image in memory to images larger than memory and cohorts of files.

One image: :mod:`.segment` (the entry points), :mod:`.tiling` (plans), :mod:`.blending`
(weights and the band accumulator), :mod:`.forward` (device, precision, TTA, compile),
:mod:`.tile_loop` (cut, normalise, predict, blend), :mod:`.pipeline` (host/device steps,
overlapped on CUDA), :mod:`.device_blend` (blending on the device) and
:mod:`.uncertainty` (entropy maps, what to review first). Larger than memory:
:mod:`.blockwise` (blocks over the global tile grid), :mod:`.block_runner` (a block's
task, here or on dask.distributed), :mod:`.block_objects` (objects over the blocks: ids
unique over the image, objects cut by block edges merged) and :mod:`.cluster` (which
dask cluster, which GPU a worker uses). Many files: :mod:`.cohort`
(:func:`~.cohort.segment_files`), :mod:`.cohort_file` (one file, here or on a worker)
and :mod:`.cohort_blocks` (large files of a cohort). Input preparation is
:mod:`napari_res101unet.preprocess`, file formats :mod:`napari_res101unet.io`.
``tiling``, ``blending`` and ``uncertainty`` are numpy only; torch is imported when
:func:`segment` is first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_attributes

_LAZY = {
    "segment": "segment",
    "run_segmentation": "segment",
    "SegmentationResult": "segment",
    "plan_tiles": "tiling",
    "TilePlan": "tiling",
}
__all__ = list(_LAZY)


__getattr__ = lazy_attributes(__name__, _LAZY)

if TYPE_CHECKING:  # pragma: no cover
    from .segment import SegmentationResult, run_segmentation, segment
    from .tiling import TilePlan, plan_tiles
