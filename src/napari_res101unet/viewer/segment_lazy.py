"""Segmenting a lazy image layer (dask, zarr, multiscale) without loading it whole.

The engine is given a store path, never the pixels: the layer's own file when it was
opened from a zarr / OME-Zarr / big TIFF (``layer.source.path``) or is a zarr array on
disk, else a temporary zarr this process writes chunk by chunk from the dask array. The
engine segments it block by block (:func:`~..inference.blockwise.segment_blocks`),
reporting progress in blocks, into an on-disk OME-Zarr; the Labels layer is backed by that
zarr array (painting writes into it; File > Save Layers saves it). No torch here.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import BlockwiseSettings, SegmentSettings, settings_with, split_fields
from ..engine import protocol as P
from .jobs import Progress, model_reference, run_job
from .layers import (
    derived_metadata,
    free_name,
    get_layer,
    mark_edited,
    record_model,
    spatial_geometry,
)

STAGE_CHUNK = 1024


def is_lazy_layer(layer: Any) -> bool:
    """Whether ``layer``'s data is multiscale or a dask / zarr array (not numpy)."""
    if getattr(layer, "multiscale", False):
        return True
    module = type(getattr(layer, "data", None)).__module__
    return module.startswith(("dask", "zarr"))


@dataclass
class LazyRequest:
    """A blockwise job for one lazy image layer."""

    image: Any
    source: str
    axes: str
    output: str
    model: str
    settings: SegmentSettings
    blockwise: BlockwiseSettings

    def payload(self) -> dict[str, Any]:
        return {"source": self.source, "output": self.output, "model": self.model,
                "settings": self.settings, "blockwise": self.blockwise,
                "axes": self.axes}  # fmt: skip


def lazy_request(
    viewer: Any,
    layer: Any,
    model: Any,
    settings: SegmentSettings | None = None,
    blockwise: BlockwiseSettings | None = None,
    *,
    output: str | Path | None = None,
) -> LazyRequest:
    """Build the job of a lazy layer; stages a temporary zarr when it has no store on disk.

    ``output``: the labels store (default: ``<layer name>_labels.zarr`` in a new temporary
    folder; an existing store is refused).
    """
    image = get_layer(viewer, layer, "image")
    reference = model_reference(model)
    data = image.data[0] if getattr(image, "multiscale", False) else image.data
    rgb = bool(getattr(image, "rgb", False))
    spatial = data.ndim - (1 if rgb else 0)
    if spatial not in (2, 3):
        raise ValueError(
            f"layer '{image.name}' has {spatial} spatial dimensions; Segment takes 2D images "
            "and 3D stacks"
        )
    axes = ("zyx" if spatial == 3 else "yx") + ("c" if rgb else "")
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", image.name) or "image"
    source = layer_store(image, data)
    folder = None
    if source is None or output is None:  # a temporary folder, only when one is needed
        folder = Path(tempfile.mkdtemp(prefix="res101unet-"))
    if source is None:
        source = stage(data, axes, folder / f"{safe}_input.zarr")
    out = str(output) if output is not None else str(folder / f"{safe}_labels.zarr")
    return LazyRequest(
        image, source, axes, out, reference, settings or SegmentSettings(),
        blockwise or BlockwiseSettings(),
    )  # fmt: skip


def layer_store(layer: Any, data: Any) -> str | None:
    """The store on disk holding ``data``: the file the layer was read from (a zarr / big
    TIFF whose level 0 is ``data``), or a zarr array's own store; else None."""
    from ..io.large import is_large_source

    path = getattr(getattr(layer, "source", None), "path", None)
    if path and is_large_source(path):
        return str(path)
    if type(data).__module__.startswith("zarr"):
        root = getattr(data.store, "root", None)
        if root is not None:
            return str(Path(root) / data.path) if data.path else str(root)
    return None


def stage(data: Any, axes: str, path: Path) -> str:
    """Write ``data`` (dask / zarr / any array-like with ``axes``) to a zarr at ``path``,
    chunk by chunk (one slice, ``STAGE_CHUNK`` rows and columns, all channels each)."""
    import dask.array as da

    sizes = {"z": 1, "y": STAGE_CHUNK, "x": STAGE_CHUNK, "c": -1}
    chunks = tuple(sizes[a] for a in axes)
    arr = data if isinstance(data, da.Array) else da.from_array(data, chunks=chunks)
    arr.rechunk(chunks).to_zarr(str(path), overwrite=False)
    return str(path)


def apply_lazy_result(viewer: Any, request: LazyRequest, result: dict) -> Any:
    """A Labels layer over the image, backed by the engine's on-disk zarr labels."""
    from ..io.label_store import open_labels

    labels = open_labels(result["path"], writable=True)
    image = request.image
    layer = viewer.add_labels(
        labels,
        name=free_name(viewer, f"{image.name} labels"),
        metadata=derived_metadata(image, {"source": image.name, "store": result["path"]}),
        **spatial_geometry(image),
    )
    layer.events.paint.connect(lambda event=None: mark_edited(layer))
    record_model(layer, result)
    return layer


def segment_lazy_layer(
    viewer: Any,
    layer: Any,
    model: Any = "untrained",
    settings: SegmentSettings | None = None,
    blockwise: BlockwiseSettings | None = None,
    *,
    output: str | Path | None = None,
    in_process: bool = False,
    progress: Progress | None = None,
    show_probabilities: bool = False,
    **fields: Any,
) -> Any:
    """Segment a lazy image layer block by block; returns the zarr-backed Labels layer.

    ``settings``, ``blockwise`` and ``**fields`` (fields of either; a name both have is
    the segmentation's) as in :func:`~napari_res101unet.inference.blockwise.segment_blocks`.
    ``progress`` gets the engine's ``PROGRESS`` messages, counting blocks.
    """
    if show_probabilities:
        raise ValueError("probabilities are not kept for lazy layers (segmented block by block)")
    segment_fields, block_fields = split_fields(fields, SegmentSettings, BlockwiseSettings)
    s = settings_with(SegmentSettings, settings, segment_fields)
    b = settings_with(BlockwiseSettings, blockwise, block_fields)
    request = lazy_request(viewer, layer, model, s, b, output=output)
    result = run_job(P.SEGMENT_BLOCKS, request.payload(), in_process=in_process,
                     progress=progress)  # fmt: skip
    return apply_lazy_result(viewer, request, result)
