"""npe2 writers for Labels and Image layers, keeping the layer's geometry.

``scale`` becomes the spacing (a 4D layer's time step too: NIfTI keeps it, NRRD and
MetaImage refuse it) and ``translate`` the origin; ``metadata["direction"]``
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


def write_dicom_seg(path: str, data: Any, meta: dict) -> list[str]:
    """Write a Labels layer segmented from a DICOM series as a DICOM SEG at ``path``.

    The layer's ``metadata["source"]`` (the DICOM folder, copied from the image layer
    that this plugin's reader opened) is the referenced series; class names and the
    model's identity come from the segmentation (``metadata["napari_res101unet"]``).

    Raises
    ------
    ValueError
        When the layer's image did not come from a DICOM series.
    """
    extra = meta.get("metadata") or {}
    source = extra.get("source")
    if not source:
        raise ValueError(
            f"layer {meta.get('name')!r} has no source file: DICOM SEG is written for "
            "labels of an image opened from a DICOM series with this plugin's reader"
        )
    labels = np.asarray(data)
    ours = extra.get("napari_res101unet") or {}
    names = ours.get("class_names") or _generic_names(labels)
    algorithm = ours.get("algorithm") or ("manual or unknown", "unknown")
    written = io.write_dicom_seg(
        path, labels, source, class_names=names, algorithm_name=algorithm[0],
        algorithm_version=algorithm[1], overwrite=True,
    )  # fmt: skip
    return [str(written)]


def _generic_names(labels: np.ndarray) -> list[str]:
    top = int(labels.max()) if labels.size else 1
    return ["background", *(f"label {v}" for v in range(1, max(top, 1) + 1))]


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
    return {  # every axis: a 4D layer's time step (TR) is kept where the format can
        "spacing": None if scale is None else tuple(scale)[-ndim:],
        "origin": None if translate is None else tuple(translate)[-ndim:],
        "direction": tuple(direction) if direction is not None else None,
        "unit": extra.get("unit"),
        "nifti": extra.get("nifti"),
    }
