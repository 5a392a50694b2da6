"""Which files this package reads and writes, decided from names and a few header bytes.

Nothing here decodes pixels, and nothing here raises: the napari reader calls these
functions for every file a user drops, so they must answer quickly and quietly.
"""

from __future__ import annotations

import os
from pathlib import Path

NIFTI = (".nii", ".nii.gz")
NRRD = (".nrrd", ".nhdr")
METAIMAGE = (".mha", ".mhd")
DICOM = (".dcm",)
TIFF = (".tif", ".tiff", ".ome.tif", ".ome.tiff")
PLAIN = (".png", ".jpg", ".jpeg", ".bmp")
ITK_VOLUMES = NIFTI + NRRD + METAIMAGE
READABLE = ITK_VOLUMES + DICOM + TIFF + PLAIN
# .mhd/.nhdr keep pixels in a second file, which an atomic single-file write cannot
# guarantee; JPEG is lossy. Both are refused by the writer with a message saying so.
WRITABLE = (".nii", ".nii.gz", ".nrrd", ".mha", *TIFF, ".png", ".bmp")
LABEL_WRITABLE = tuple(ext for ext in WRITABLE if ext != ".bmp")

FORMAT_NAMES = {
    **dict.fromkeys(NIFTI, "NIfTI"),
    **dict.fromkeys(NRRD, "NRRD"),
    **dict.fromkeys(METAIMAGE, "MetaImage"),
    ".dcm": "DICOM",
    "": "DICOM series",
    **dict.fromkeys(TIFF, "TIFF"),
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".bmp": "BMP",
}

_DICOM_SCAN_LIMIT = 64


def suffix(path: str | os.PathLike) -> str:
    """Lower-case suffix, with ``.nii.gz`` and ``.ome.tif(f)`` kept whole.

    Examples
    --------
    >>> suffix("CT_001.nii.gz"), suffix("cells.OME.TIF"), suffix("mask.png")
    ('.nii.gz', '.ome.tif', '.png')
    """
    name = Path(path).name.lower()
    for double in (".nii.gz", ".ome.tif", ".ome.tiff"):
        if name.endswith(double):
            return double
    return Path(name).suffix


def stem(path: str | os.PathLike) -> str:
    """The file name without its (possibly double) suffix: a layer's default name."""
    path = Path(path)
    ext = "" if path.is_dir() else suffix(path)
    return path.name[: len(path.name) - len(ext)] or path.name


def format_name(path: str | os.PathLike) -> str:
    """Human name of the format (``"NIfTI"``, ``"DICOM series"``...), for messages."""
    return FORMAT_NAMES.get("" if Path(path).is_dir() else suffix(path), suffix(path))


def is_dicom_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a DICOM Part 10 file (``DICM`` at byte 128) or ends in .dcm."""
    if suffix(path) in DICOM:
        return True
    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:] == b"DICM"


def is_dicom_folder(path: str | os.PathLike) -> bool:
    """Whether a folder holds DICOM files (looks at no more than 64 of its files)."""
    try:
        with os.scandir(path) as entries:
            for seen, entry in enumerate(entries):
                if seen >= _DICOM_SCAN_LIMIT:
                    return False
                if entry.name.startswith(".") or not entry.is_file():
                    continue
                if is_dicom_file(entry.path):
                    return True
    except OSError:
        return False
    return False


def can_read(path: str | os.PathLike) -> bool:
    """Whether :func:`~napari_res101unet.io.read_image` handles ``path``; never raises.

    Decided from the suffix for files (or the ``DICM`` marker of a DICOM file without
    one), and from a look at a few files for folders (a folder is accepted when it holds
    DICOM files). Says nothing about whether the file is intact: reading it tells that.
    """
    try:
        path = Path(path)
        if path.is_dir():
            return is_dicom_folder(path)
        return path.is_file() and (suffix(path) in READABLE or is_dicom_file(path))
    except (OSError, TypeError, ValueError):
        return False
