"""Files written by the libraries of the field (not by this package), for reader tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk

CT_SPACING = (0.7, 0.8, 2.5)  # ITK order x, y, z (mm)
CT_ORIGIN = (-120.0, -95.5, 30.0)


def ct_volume(shape=(4, 24, 20), seed: int = 0) -> np.ndarray:
    """int16 Hounsfield-like volume: air (-1000) around soft tissue and some bone."""
    rng = np.random.default_rng(seed)
    vol = np.full(shape, -1000, np.int16)
    vol[:, 4:-4, 4:-4] = rng.integers(-100, 200, (shape[0], shape[1] - 8, shape[2] - 8))
    vol[:, 10:12, 8:10] = 1200
    return vol


def sitk_image(array: np.ndarray, spacing, origin, direction=None) -> sitk.Image:
    img = sitk.GetImageFromArray(array)
    img.SetSpacing(spacing)
    img.SetOrigin(origin)
    if direction is not None:
        img.SetDirection(direction)
    return img


def write_dicom_series(
    folder: Path, volume: np.ndarray, *, series_uid: str = "1.2.826.0.1.3680043.2.1125.7.1"
) -> Path:
    """A CT series as in SimpleITK's "DICOM series from array" example: one file per slice."""
    folder.mkdir(parents=True, exist_ok=True)
    img = sitk_image(volume, CT_SPACING, CT_ORIGIN)
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    for z in range(img.GetDepth()):
        slice_ = img[:, :, z]
        position = img.TransformIndexToPhysicalPoint((0, 0, z))
        tags = {
            "0008|0060": "CT",
            "0008|0021": "20240101",
            "0008|0031": "120000",
            "0020|000d": series_uid + ".0",
            "0020|000e": series_uid,
            "0020|0037": "1\\0\\0\\0\\1\\0",
            "0020|0032": "\\".join(f"{p:.4f}" for p in position),
            "0020|0013": str(z + 1),
            "0018|0050": str(CT_SPACING[2]),
            "0008|0008": "ORIGINAL\\PRIMARY\\AXIAL",
        }
        for key, value in tags.items():
            slice_.SetMetaData(key, value)
        writer.SetFileName(str(folder / f"{series_uid[-3:]}_{z:03d}.dcm"))
        writer.Execute(slice_)
    return folder


def truncate(path: Path, fraction: float = 0.6) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    return path
