"""The engine's blockwise operation: a store on disk in, an OME-Zarr labels store out.

napari's process sends paths only (see :mod:`napari_res101unet.viewer.segment_lazy`);
progress counts blocks.
"""

from __future__ import annotations

from typing import Any


def segment_store(msg: dict, job: Any) -> tuple[dict[str, Any], Any]:
    """Run :func:`~..inference.blockwise.segment_blocks` for a ``SEGMENT_BLOCKS`` request:
    ``(reply without the model's name, the model)``."""
    from ..inference.blockwise import segment_blocks
    from ..inference.cluster import worker_model
    from ..io import algorithm_identity

    options = dict(msg.get("options") or {})
    result = segment_blocks(
        msg["source"],
        msg["model"],
        msg["output"],
        progress=job.progress,
        should_stop=job.should_stop,
        **options,
    )
    model = worker_model(msg["model"], options.get("device", "auto"))
    return {
        "path": result.path,
        "blocks": result.blocks,
        "summary": f"{result.blocks} blocks, {result.plan.describe()}, {result.seconds:.1f} s",
        "plan": result.plan.describe(),
        "seconds": result.seconds,
        "class_names": list(model.spec.class_names),
        "algorithm": list(algorithm_identity(model)),
    }, model
