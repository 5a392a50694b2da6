"""The engine's blockwise operation: a store on disk in, an OME-Zarr labels store out.

napari's process sends paths only (see :mod:`napari_res101unet.viewer.segment_lazy`);
progress counts blocks.
"""

from __future__ import annotations

from typing import Any


def segment_store(msg: dict, job: Any) -> dict[str, Any]:
    """Run :func:`~..inference.blockwise.segment_blocks` for a ``SEGMENT_BLOCKS`` request
    (``source``, ``output``, ``model``, ``settings``, ``blockwise``, ``axes``)."""
    from ..inference.blockwise import segment_blocks

    result = segment_blocks(
        msg["source"],
        msg["model"],
        msg["output"],
        msg.get("settings"),
        msg.get("blockwise"),
        axes=msg.get("axes"),
        progress=job.progress,
        should_stop=job.should_stop,
    )
    return {
        "path": result.path,
        "blocks": result.blocks,
        "summary": f"{result.blocks} blocks, {result.plan.describe()}, {result.seconds:.1f} s",
        "plan": result.plan.describe(),
        "seconds": result.seconds,
        "class_names": result.class_names,
        "algorithm": list(result.algorithm),
        "settings": result.settings.as_dict(),
        "blockwise": result.blockwise.as_dict(),
        "model_name": result.algorithm[0],
    }
