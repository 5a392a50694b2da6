"""Siemens mosaics: a whole volume tiled into one 2D DICOM image (fMRI, DWI).

The slices sit side by side in a square grid; their number is in the Siemens CSA
header, and ``ImagePositionPatient`` is the corner of the whole tile, not of the first
slice. nibabel's ``MosaicWrapper`` (nibabel.nicom) unpacks the slices and corrects the
position, as dcm2niix does; the volume is returned in our convention (``(Z, Y, X)``,
LPS, ITK direction).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from ._image import ImageData


def is_mosaic(ds) -> bool:
    """Whether a (single-frame) DICOM header says it is a Siemens mosaic."""
    kinds = [str(v).upper() for v in (ds.get("ImageType") or [])]
    return "MOSAIC" in kinds and int(ds.get("NumberOfFrames", 1) or 1) == 1


def read_mosaic(path: Path) -> ImageData:
    """The volume of a Siemens mosaic file, placed with nibabel's MosaicWrapper.

    Raises
    ------
    ValueError
        When the CSA header does not say how many slices the mosaic holds, or the pixels
        cannot be unpacked into them.
    """
    import pydicom

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nibabel.nicom warns that it is experimental
        from nibabel.nicom import dicomwrappers

    try:
        wrapper = dicomwrappers.MosaicWrapper(pydicom.dcmread(path))
        data = np.asarray(wrapper.get_data())  # (rows, cols, slices), rescaled
        affine = np.asarray(wrapper.affine, float)  # (row, col, slice) index -> LPS mm
    except (dicomwrappers.WrapperError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(
            "it is a Siemens mosaic (several slices tiled in one image) whose slices cannot "
            f"be unpacked ({exc}); convert it with dcm2niix"
        ) from None
    if data.ndim != 3 or affine.shape != (4, 4):
        raise ValueError(f"it is a Siemens mosaic that unpacks to {data.shape}, not a volume")
    cols = affine[:3, :3]
    size = np.linalg.norm(cols, axis=0)  # row step (dy), column step (dx), slice step (dz)
    unit = cols / np.where(size > 0, size, 1.0)
    direction = np.stack([unit[:, 1], unit[:, 0], unit[:, 2]], axis=1)  # ITK x, y, z
    image = ImageData(
        np.ascontiguousarray(data.transpose(2, 0, 1)),
        (float(size[2]), float(size[0]), float(size[1])),
        tuple(float(v) for v in affine[:3, 3][::-1]),
        tuple(float(v) for v in direction.reshape(-1)),
        metadata={"unit": "mm"},
    )
    image.metadata["notes"] = [
        f"a Siemens mosaic: its {data.shape[2]} slices of {data.shape[0]} x {data.shape[1]} "
        "pixels are unpacked into a volume and placed with the CSA header (nibabel)"
    ]
    return image
