"""npe2 writers for Labels and Image layers, keeping the layer's geometry.

``scale`` becomes the spacing and ``translate`` the origin; ``metadata["direction"]``
(set by this plugin's reader) restores the source's direction matrix in NIfTI, NRRD and
MetaImage (a 4D source's spatial block for a 3D mask), ``metadata["nifti"]`` the NIfTI
sform/qform codes, and ``metadata["unit"]`` the unit (converted to mm for NIfTI, NRRD
and MetaImage). Writes are atomic (see
:func:`napari_res101unet.io.write_image`). Labels are stored losslessly in the smallest
unsigned type that holds them (PNG: uint8/uint16).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import io


def write_labels(path: str, data: Any, meta: dict) -> list[str]:
    """Write a Labels layer to ``path`` (NIfTI, TIFF, PNG, NRRD, MHA).

    Parameters
    ----------
    path : str
        Target file; its suffix picks the format.
    data : (Y, X) or (Z, Y, X) array-like
        Integer labels.
    meta : dict
        The layer's attributes (``scale``, ``translate``, ``metadata``...).
    """
    labels = np.asarray(data)
    written = io.write_labels(path, labels, **_geometry(meta, labels.ndim))
    return [str(written)]


def write_image(path: str, data: Any, meta: dict) -> list[str]:
    """Write an Image layer to ``path`` (NIfTI, TIFF, NRRD, MHA), keeping its dtype.

    A multiscale layer is written at its full resolution.
    """
    if meta.get("multiscale"):
        data = data[0]
    image = np.asarray(data)
    rgb = bool(meta.get("rgb", False))
    ndim = image.ndim - (1 if rgb else 0)
    written = io.write_image(path, image, rgb=rgb, **_geometry(meta, ndim))
    return [str(written)]


def _geometry(meta: dict, ndim: int) -> dict:
    """Spacing, origin, direction and unit of a layer with ``ndim`` spatial axes."""
    extra = meta.get("metadata") or {}
    scale = meta.get("scale")
    translate = meta.get("translate")
    direction = extra.get("direction")
    spatial = min(ndim, 3)
    return {
        "spacing": None if scale is None else tuple(scale)[-spatial:],
        "origin": None if translate is None else tuple(translate)[-spatial:],
        "direction": tuple(direction) if direction is not None else None,
        "unit": extra.get("unit"),
        "nifti": extra.get("nifti"),
    }
