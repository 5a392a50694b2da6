"""Layer rules shared by the napari API and the widgets: names, geometry, edits."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..io._units import UNITLESS

TAG = "napari_res101unet"
"""Key of this plugin's entry in a layer's metadata (``source``, ``edited``...)."""
GEOMETRY_KEYS = ("direction", "unit", "units", "spacing", "origin", "nifti")
"""Metadata a derived layer copies from its image, so saving it keeps the geometry."""
SOURCE_KEYS = ("source", "format")
"""The reader's file of an image, kept on layers derived from it (DICOM SEG references it)."""


def get_layer(viewer: Any, layer: Any, kind: str | None = None) -> Any:
    """``layer`` itself or the layer of that name, checked to be of ``kind``."""
    if isinstance(layer, str):
        if layer not in viewer.layers:
            names = ", ".join(repr(x.name) for x in viewer.layers) or "none"
            raise ValueError(f"no layer named {layer!r} in the viewer (layers: {names})")
        layer = viewer.layers[layer]
    if layer is None:
        raise ValueError(f"no {kind or ''} layer given".replace("  ", " "))
    if kind is not None and layer_kind(layer) != kind:
        raise ValueError(f"layer {layer.name!r} is a {layer_kind(layer)} layer, not {kind}")
    return layer


def layer_kind(layer: Any) -> str:
    """``"image"``, ``"labels"``... (napari's layer class name, lower case)."""
    return layer.__class__.__name__.lower()  # also through napari's PublicOnlyProxy


def layer_array(layer: Any) -> np.ndarray:
    """The full-resolution data of a layer as a numpy array (dask/zarr computed)."""
    data = layer.data[0] if getattr(layer, "multiscale", False) else layer.data
    return np.asarray(data)


def spatial_geometry(layer: Any) -> dict[str, Any]:
    """Scale and translate of a layer, for a layer drawn over it."""
    return {
        "scale": np.asarray(layer.scale).tolist(),
        "translate": np.asarray(layer.translate).tolist(),
    }


def derived_metadata(layer: Any, info: dict) -> dict[str, Any]:
    """Metadata for a layer computed from ``layer``: its geometry (so saving restores the
    direction and unit) plus this plugin's entry."""
    meta = {k: layer.metadata[k] for k in (*GEOMETRY_KEYS, *SOURCE_KEYS) if k in layer.metadata}
    meta[TAG] = dict(info)
    return meta


def free_name(viewer: Any, name: str) -> str:
    """``name``, or ``name [2]``, ``name [3]``... whichever no layer has yet."""
    names = {layer.name for layer in viewer.layers}
    if name not in names:
        return name
    i = 2
    while f"{name} [{i}]" in names:
        i += 1
    return f"{name} [{i}]"


def is_edited(layer: Any) -> bool:
    return bool((layer.metadata.get(TAG) or {}).get("edited"))


def mark_edited(layer: Any) -> None:
    """Record that the user painted on ``layer``: it is never overwritten afterwards."""
    meta = dict(layer.metadata.get(TAG) or {})
    meta["edited"] = True
    layer.metadata[TAG] = meta


def own_layer(viewer: Any, name: str, kind: str, source: Any) -> Any:
    """Our earlier output for ``source`` if it is still ours to replace (not painted)."""
    for candidate in viewer.layers:
        meta = candidate.metadata.get(TAG) or {}
        if (
            layer_kind(candidate) == kind
            and meta.get("source") == source.name
            and not meta.get("edited")
            and candidate.name == name
        ):
            return candidate
    return None


def spatial_shape(image: Any) -> tuple[int, ...]:
    shape = tuple(image.data[0].shape if image.multiscale else image.data.shape)
    return shape[:-1] if getattr(image, "rgb", False) else shape


def put_map(
    viewer: Any, image: Any, data: np.ndarray, index: int | None, suffix: str, **display: Any
) -> Any:
    """A float ``0..1`` map over ``image`` (``"<image> <suffix>"``, magma): updated in place
    when this plugin made it before and its shape fits, else added; ``index`` puts one slice
    of a stack. ``display``: napari's ``opacity``, ``blending``..."""
    data = np.asarray(data, np.float32)
    name = f"{image.name} {suffix}"
    target = own_layer(viewer, name, "image", image)
    if index is not None:
        full = target.data if target is not None else np.zeros(spatial_shape(image), np.float32)
        full[index] = data
        data = full
    if target is not None and target.data.shape == data.shape:
        target.data = data
        return target
    return viewer.add_image(
        data,
        name=free_name(viewer, name),
        colormap="magma",
        contrast_limits=(0.0, 1.0),
        metadata=derived_metadata(image, {"source": image.name}),
        **display,
        **spatial_geometry(image),
    )


def known_spacing(layer: Any) -> list[float] | None:
    """The in-plane ``[y, x]`` spacing of ``layer``, or None when it is unknown."""
    scale = [float(s) for s in np.asarray(layer.scale).ravel()]
    if len(scale) < 2:
        return None
    unit = (getattr(layer, "metadata", None) or {}).get("unit")
    if unit not in UNITLESS or any(s != 1.0 for s in scale[-2:]):
        return scale[-2:]
    return None


RECORDED = ("class_names", "algorithm", "settings", "blockwise")
"""What a result layer keeps of its run: the model's class names and identity (a DICOM SEG
names them) and the settings that made it."""


def record_model(layer: Any, result: dict) -> None:
    """Keep the model's class names and identity and the run's settings on ``layer``."""
    meta = dict(layer.metadata.get(TAG) or {})
    meta.update({k: result[k] for k in RECORDED if result.get(k)})
    layer.metadata[TAG] = meta
