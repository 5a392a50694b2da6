"""npe2 reader: NIfTI, DICOM, NRRD, MetaImage, TIFF/OME-TIFF and PNG/JPEG/BMP.

``get_reader`` answers ``None`` at once for anything it does not handle (no decoding, no
exception); the returned function reads with :func:`napari_res101unet.io.read_image`
and raises ``ValueError`` naming the file and what is wrong (corrupt or truncated, a DICOM
object without an image, an irregular DICOM series). What the reader had to say about a
file it did read (other series in the folder, NaN voxels, converted units) is shown as a
notification and kept in ``metadata["notes"]``. Label maps
(by name or content, see :mod:`napari_res101unet.io._content`) open as Labels layers;
CT in Hounsfield units opens with a soft-tissue window. Spacing becomes ``scale`` and
origin ``translate``; the direction matrix and the rest of the geometry go into the
layer's ``metadata`` (see :mod:`napari_res101unet.io`). No torch here.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from .io import ImageData, can_read, dicom_non_image, read_image
from .io._large_layers import is_lazy_file, read_lazy

PathLike = str | os.PathLike
LayerData = tuple[Any, dict, str]


def get_reader(path: PathLike | Sequence[PathLike]) -> Callable[..., list[LayerData]] | None:
    """Return :func:`read_layers` when every path is one this plugin reads, else None.

    DICOM files that hold no image (RT Plan, RT Structure Set, SR, ECG...) are declined
    from their header alone; :func:`read_image` says what they are when asked directly.
    """
    paths = _as_list(path)
    if paths and all(is_lazy_file(p) for p in paths):  # zarr / OME-Zarr / big TIFF
        return read_lazy_layers
    if not paths or not all(can_read(p) and dicom_non_image(p) is None for p in paths):
        return None
    return read_layers


def read_layers(path: PathLike | Sequence[PathLike]) -> list[LayerData]:
    """Read one file, a DICOM folder, or a list of them into napari layer data.

    Raises
    ------
    ValueError
        When a file is corrupt, truncated or not what its suffix says; names the file.
    """
    images = [read_image(p) for p in _as_list(path)]
    for image in images:
        _notify(image)
    return [layer_data(image) for image in images]


def read_lazy_layers(path: PathLike | Sequence[PathLike]) -> list[LayerData]:
    """Zarr / OME-Zarr stores and big TIFFs as dask-backed (multiscale) image layers."""
    return [layer for p in _as_list(path) for layer in read_lazy(p)]


def layer_data(image: ImageData) -> LayerData:
    """``(data, kwargs, "image" | "labels")`` for ``viewer._add_layer_from_data``."""
    metadata = {
        **image.metadata,
        "spacing": image.spacing,
        "origin": image.origin,
        "direction": image.direction,
    }
    kwargs: dict[str, Any] = {
        "name": image.metadata.get("name"),
        "scale": image.spacing,
        "translate": image.origin,
        "metadata": metadata,
    }
    if image.is_labels:
        return image.data, kwargs, "labels"
    if image.rgb:
        kwargs["rgb"] = True  # 16-bit colour comes with a window over its full range
    if image.window is not None:
        kwargs["contrast_limits"] = list(image.window)
    return image.data, kwargs, "image"


def _notify(image: ImageData) -> None:
    """Show what the reader had to say about a file (other series, NaN, unit changes...).

    The same notes stay in the layer's ``metadata["notes"]``.
    """
    notes = image.metadata.get("notes") or []
    if not notes:
        return
    try:
        from napari.utils.notifications import show_info
    except ImportError:  # headless use without napari: the metadata is the record
        return
    for note in notes:
        show_info(f"{image.metadata.get('name')}: {note}")


def _as_list(path: Any) -> list:
    if isinstance(path, (str, os.PathLike)):
        return [path]
    try:
        return list(path)
    except TypeError:
        return []
