"""Reading and writing the image formats of the field (engine side, no napari/Qt).

``read_image(path) -> ImageData`` and ``write_image(path, data, ...)`` are the contract the
CLI, the API and the napari reader/writer share.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

TIFF = (".tif", ".tiff")
PLAIN = (".png", ".jpg", ".jpeg", ".bmp")
ITK = (".nii", ".nii.gz", ".nrrd", ".mha", ".mhd")


@dataclass
class ImageData:
    """Pixels plus their physical geometry, in numpy axis order (Z, Y, X).

    Attributes
    ----------
    data : ndarray
        ``(Y, X)``, ``(Y, X, C)``, ``(Z, Y, X)`` or ``(Z, Y, X, C)``.
    spacing, origin : tuple of float
        Per spatial axis, in the order of ``data``'s spatial axes (mm for medical images).
    direction : tuple of float or None
        ITK direction cosines (row-major, ITK's x, y, z order) when the file has them.
    rgb : bool
        Whether the last axis holds RGB(A) colour.
    """

    data: np.ndarray
    spacing: tuple[float, ...]
    origin: tuple[float, ...]
    direction: tuple[float, ...] | None = None
    rgb: bool = False
    metadata: dict = field(default_factory=dict)


def suffix(path: str | os.PathLike) -> str:
    """Lower-case suffix, with ``.nii.gz`` kept whole."""
    name = Path(path).name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else Path(name).suffix


def read_image(path: str | os.PathLike) -> ImageData:
    """Read an image file (or a DICOM series folder) with its spacing.

    Raises
    ------
    ValueError
        For an unsupported format or a corrupt/truncated file (the message names the file).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    ext = suffix(path)
    try:
        if ext in TIFF:
            import tifffile

            data = tifffile.imread(path)
            return ImageData(
                data,
                (1.0,) * _spatial_ndim(data),
                (0.0,) * _spatial_ndim(data),
                rgb=data.ndim >= 3 and data.shape[-1] in (3, 4),
            )
        if path.is_dir() or ext in ITK + PLAIN + (".dcm",):
            return _read_itk(path)
    except (RuntimeError, OSError, ValueError) as exc:
        raise ValueError(f"cannot read {path}: {str(exc).strip().splitlines()[0]}") from None
    raise ValueError(f"{path}: unsupported format {ext!r}")


def _spatial_ndim(data: np.ndarray) -> int:
    return data.ndim - 1 if data.ndim >= 3 and data.shape[-1] in (3, 4) else data.ndim


def _read_itk(path: Path) -> ImageData:
    import SimpleITK as sitk

    if path.is_dir():
        reader = sitk.ImageSeriesReader()
        files = reader.GetGDCMSeriesFileNames(str(path))
        if not files:
            raise ValueError("no DICOM series in this folder")
        reader.SetFileNames(files)
        img = reader.Execute()
    else:
        img = sitk.ReadImage(str(path))
    data = sitk.GetArrayFromImage(img)
    rgb = img.GetNumberOfComponentsPerPixel() in (3, 4)
    return ImageData(
        data,
        tuple(float(s) for s in reversed(img.GetSpacing())),
        tuple(float(o) for o in reversed(img.GetOrigin())),
        tuple(float(d) for d in img.GetDirection()),
        rgb=rgb,
    )


def write_image(
    path: str | os.PathLike,
    data: np.ndarray,
    *,
    spacing: tuple[float, ...] | None = None,
    origin: tuple[float, ...] | None = None,
    direction: tuple[float, ...] | None = None,
) -> Path:
    """Write ``data`` atomically (temporary file + rename) in the format of ``path``'s suffix."""
    path = Path(path)
    ext = suffix(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=ext, dir=path.parent)
    os.close(fd)
    try:
        if ext in TIFF:
            import tifffile

            tifffile.imwrite(tmp, data)
        elif ext in (*ITK, ".png", ".bmp"):
            import SimpleITK as sitk

            img = sitk.GetImageFromArray(np.ascontiguousarray(data))
            if spacing is not None:
                img.SetSpacing(tuple(float(s) for s in reversed(spacing)))
            if origin is not None:
                img.SetOrigin(tuple(float(o) for o in reversed(origin)))
            if direction is not None and len(direction) == img.GetDimension() ** 2:
                img.SetDirection(direction)
            sitk.WriteImage(img, tmp)
        else:
            raise ValueError(f"{path}: cannot write format {ext!r}")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
