"""Inference: tiled, blended, memory-bounded prediction (see :func:`segment`).

Modules: :mod:`.segment` (the entry points), :mod:`.tiling` (plans), :mod:`.blending`
(weights and the band accumulator), :mod:`.forward` (device, precision, TTA, compile),
:mod:`.data` (axes, channels, normalisation), :mod:`.job` (the tile loop),
:mod:`.pipeline` (host/device steps, overlapped on CUDA) and :mod:`.device_blend`
(blending on the device). ``tiling``, ``blending`` and ``data`` are
numpy only; torch is imported when :func:`segment` is first used.
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
