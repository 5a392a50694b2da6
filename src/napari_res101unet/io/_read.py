"""``read_image``: any supported file (or DICOM folder) to :class:`ImageData`."""

from __future__ import annotations

import os
import zlib
from pathlib import Path

import numpy as np

from ._content import (
    SOFT_TISSUE_WINDOW,
    as_labels,
    content_says_labels,
    gray_from_rgb,
    looks_like_hu,
    name_allows_labels,
    name_says_labels,
)
from ._formats import (
    DICOM,
    ITK_VOLUMES,
    NIFTI,
    PLAIN,
    READABLE,
    TIFF,
    format_name,
    is_dicom_file,
    is_dicom_folder,
    stem,
    suffix,
)
from ._image import ImageData
from ._limits import check_declared_size
from ._limits import max_pixels as max_pixels_limit

_GRAYABLE = (*PLAIN, *TIFF)


def read_image(
    path: str | os.PathLike,
    *,
    labels: bool | None = None,
    series: str | None = None,
    max_pixels: int | None = None,
) -> ImageData:
    """Read an image file or a DICOM series folder with its geometry.

    Parameters
    ----------
    path : str or PathLike
        A file with a suffix in ``READABLE``, or a folder of DICOM files (the largest
        series is read; ``metadata["series_count"]`` says how many there were).
    labels : bool or None
        None decides from the name and the content (see :mod:`._content`); True insists
        on a label map (ValueError when the pixels cannot be one); False never converts.
    series : str, optional
        For a DICOM folder: the id (``metadata["series"][i]["id"]``) or SeriesInstanceUID
        of the series to open instead of the largest one.
    max_pixels : int, optional
        Refuse a file whose header declares more values (voxels x channels), before
        reading it; default ``$NAPARI_RES101UNET_MAX_PIXELS`` or 2**31.

    Returns
    -------
    ImageData
        ``data`` is ``(Y, X[, C])`` or ``(Z, Y, X[, C])``; ``spacing``/``origin`` follow
        its spatial axes.

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    ValueError
        For an unsupported format, a corrupt or truncated file, a declared size over
        ``max_pixels``, a DICOM object that holds
        no image (RT Plan, SR, ECG...), or a DICOM series whose slices do not form a
        regular volume (gantry tilt, gaps); the message names the file and the problem.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    ext = "" if path.is_dir() else suffix(path)
    if path.is_dir() and not is_dicom_folder(path):
        raise ValueError(f"{path} is a folder without DICOM files; only DICOM folders are read")
    if not path.is_dir() and ext not in READABLE and not is_dicom_file(path):
        raise ValueError(f"{path}: unsupported format {ext!r}; readable: {', '.join(READABLE)}")
    named = name_says_labels(path, stem(path))
    limit = max_pixels_limit(max_pixels)
    try:
        if not path.is_dir():
            check_declared_size(path, ext, limit)
        image = _dispatch(path, ext, named and labels is not False, series, limit)
    except (RuntimeError, OSError, ValueError, EOFError, zlib.error) as exc:
        raise ValueError(f"cannot read {path} as {format_name(path)}: {_reason(exc)}") from None
    except MemoryError:
        raise
    except Exception as exc:  # a parser's own slip on a damaged file (struct.error, KeyError)
        raise ValueError(
            f"cannot read {path} as {format_name(path)}: the file is damaged "
            f"({type(exc).__name__}: {_reason(exc)})"
        ) from None
    image.metadata.update(name=stem(path), source=str(path), format=format_name(path))
    if image.metadata.get("unit") and "units" not in image.metadata:  # one per axis
        image.metadata["units"] = (image.metadata["unit"],) * len(image.spacing)
    if not image.is_labels:
        _report_nan(image)
        _decide_labels(image, path, ext, named, labels)
    if (
        not image.is_labels
        and not image.rgb
        and looks_like_hu(image.data, modality=image.metadata.get("modality"))
    ):
        image.window = SOFT_TISSUE_WINDOW
    return image


def _dispatch(
    path: Path, ext: str, named_labels: bool, series: str | None, limit: int
) -> ImageData:
    from . import _dicom, _dicom_file, _itk, _nifti, _tiff

    if path.is_dir():
        return _dicom.read_dicom_folder(path, series, limit)
    if ext in NIFTI:
        return _nifti.read_nifti(path)
    if ext in DICOM or ext not in READABLE:
        return _dicom_file.read_dicom_file(path)
    if ext in TIFF:
        return _tiff.read_tiff(path)
    if ext in PLAIN:
        return _itk.read_plain(path, named_labels=named_labels)
    if ext in ITK_VOLUMES:
        return _itk.read_itk_file(path)
    raise ValueError(f"unsupported format {ext!r}")  # pragma: no cover (READABLE checked)


def _decide_labels(
    image: ImageData, path: Path, ext: str, named: bool, labels: bool | None
) -> None:
    """Collapse RGB-encoded grey, then turn the pixels into labels when they are ones."""
    jpeg = ext in (".jpg", ".jpeg")
    if image.rgb and ext in _GRAYABLE:
        gray = gray_from_rgb(image.data, lossy=jpeg)
        if gray is not None:
            image.data, image.rgb = gray, False
            image.metadata["rgb_encoded_gray"] = True
    if labels is False or image.rgb:
        if labels:
            raise ValueError(f"{path} holds colour (RGB) pixels, not a label map")
        return
    named = named and name_allows_labels(image.data)
    wanted = labels or named or content_says_labels(image.data, jpeg=jpeg)
    converted = as_labels(image.data, jpeg=jpeg) if wanted else None
    if converted is None:
        if labels:
            raise ValueError(f"{path} holds {image.data.dtype} values that are not labels")
        return
    image.data, image.is_labels = converted, True


def _report_nan(image: ImageData) -> None:
    """NaN voxels are counted and reported, never silently replaced."""
    if image.data.dtype.kind not in "fc":
        return
    count = int(np.count_nonzero(np.isnan(image.data)))
    if count:
        image.metadata["nan_voxels"] = count
        image.metadata.setdefault("notes", []).append(
            f"{count} of {image.data.size} voxels are NaN (not a number); they are kept as "
            "NaN: display ignores them and segmentation's normalisation must handle them"
        )


def _reason(exc: BaseException) -> str:
    """The informative line of an ITK/tifffile error (ITK's first line is a source path)."""
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    for ln in lines:
        if "ERROR:" in ln:
            return ln.split("ERROR:", 1)[1].strip().split(": ", 1)[-1] or ln
    return lines[-1] if lines else type(exc).__name__
