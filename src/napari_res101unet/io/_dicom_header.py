"""DICOM headers (pydicom, no pixel data): what an object is, and small readers.

:func:`describe` names objects without an image from their SOP Class UID (RT Plan,
Structured Report, ECG...), so the reader can say what a file is instead of failing.
"""

from __future__ import annotations

import os
from pathlib import Path

from ._formats import is_dicom_file
from ._image import ImageData

SEG_SOP = "1.2.840.10008.5.1.4.1.1.66.4"
RT_DOSE_SOP = "1.2.840.10008.5.1.4.1.1.481.2"
_NON_IMAGE = {
    "1.2.840.10008.5.1.4.1.1.481.3": "an RT Structure Set (contours, not a label image)",
    "1.2.840.10008.5.1.4.1.1.481.5": "an RT Plan",
    "1.2.840.10008.5.1.4.1.1.481.8": "an RT Ion Plan",
    "1.2.840.10008.5.1.4.1.1.481.4": "an RT Beams Treatment Record",
    "1.2.840.10008.5.1.4.1.1.104.1": "an encapsulated PDF",
    "1.2.840.10008.5.1.4.1.1.66.1": "a spatial registration",
    "1.2.840.10008.5.1.4.1.1.66.3": "a deformable spatial registration",
    "1.2.840.10008.1.3.10": "a DICOMDIR (an index of files; open the folder instead)",
}
_NON_IMAGE_FAMILIES = {
    "1.2.840.10008.5.1.4.1.1.88.": "a Structured Report",
    "1.2.840.10008.5.1.4.1.1.9.": "a waveform (ECG or other signal)",
    "1.2.840.10008.5.1.4.1.1.11.": "a presentation state",
}


def header(path: str | os.PathLike):
    """The dataset of ``path`` without pixel data, or None when it is not DICOM."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        return pydicom.dcmread(path, stop_before_pixels=True, force=True)
    except (InvalidDicomError, OSError, ValueError, EOFError, KeyError, AttributeError):
        return None


def describe(ds) -> str | None:
    """What a non-image object is (``"an RT Plan"``), or None for images and SEG."""
    sop = str(ds.get("SOPClassUID", "") or ds.file_meta.get("MediaStorageSOPClassUID", ""))
    if sop in _NON_IMAGE:
        return _NON_IMAGE[sop]
    for prefix, what in _NON_IMAGE_FAMILIES.items():
        if sop.startswith(prefix):
            return what
    if not sop or sop in (SEG_SOP, RT_DOSE_SOP) or "Rows" in ds:
        return None  # an image, or unknown: the pixel readers will tell
    return "a DICOM object without an image"


def dicom_non_image(path: str | os.PathLike) -> str | None:
    """What a DICOM *file* holds when it is not an image (``"an RT Plan"``), else None.

    Reads the header only (no pixels); None too for non-DICOM files and folders.
    """
    path = Path(path)
    if path.is_dir() or not is_dicom_file(path):
        return None
    ds = header(path)
    return None if ds is None else describe(ds)


def sop_class(ds) -> str:
    return str(ds.get("SOPClassUID", ""))


def num(ds, name: str, default: float) -> float:
    value = ds.get(name)
    return default if value in (None, "") else float(value)


def modality_into(image: ImageData, ds) -> None:
    modality = str(ds.get("Modality", "") or "").strip()
    if modality:
        image.metadata["modality"] = modality
