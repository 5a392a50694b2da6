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


BIG_ENDIAN = "1.2.840.10008.1.2.2"
_LONG_VRS = {b"OB", b"OW", b"OD", b"OF", b"OL", b"OV", b"UN", b"SQ", b"UC", b"UR", b"UT"}


def header(path: str | os.PathLike):
    """The dataset of ``path`` without pixel data, or None when it is not DICOM.

    ``ds.pixel_bytes_stored`` is how many bytes of native (uncompressed) PixelData the
    file holds, read from the element's header and the file's size (None when the pixel
    data is encapsulated, deflated or absent): see :func:`check_pixel_data`.
    """
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        with open(path, "rb") as fh:
            ds = pydicom.dcmread(fh, stop_before_pixels=True, force=True)
            ds.pixel_bytes_stored = _native_pixel_bytes(fh, ds)
        return ds
    except (InvalidDicomError, OSError, ValueError, EOFError, KeyError, AttributeError):
        return None


def big_endian(ds) -> bool:
    """Whether the dataset was stored in the retired Explicit VR Big Endian syntax."""
    meta = getattr(ds, "file_meta", None)
    ts = str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
    if ts:
        return ts == BIG_ENDIAN
    encoding = getattr(ds, "original_encoding", (None, None))
    return encoding[1] is False


def _native_pixel_bytes(fh, ds) -> int | None:
    """Bytes of the PixelData element that starts at ``fh``'s position (pydicom stops
    there), bounded by the file's end; None for encapsulated or deflated data."""
    from pydicom.uid import UID

    meta = getattr(ds, "file_meta", None)
    ts = UID(str(meta.get("TransferSyntaxUID", ""))) if meta is not None else UID("")
    if ts and (ts.is_compressed or ts.is_deflated):
        return None
    implicit, little = getattr(ds, "original_encoding", (None, None))
    start, head = fh.tell(), fh.read(12)
    if len(head) < 8 or implicit is None:
        return None
    order = "little" if little else "big"
    tag = (int.from_bytes(head[:2], order), int.from_bytes(head[2:4], order))
    if tag != (0x7FE0, 0x0010):
        return None
    if implicit:
        length, offset = int.from_bytes(head[4:8], order), 8
    elif head[4:6] in _LONG_VRS and len(head) == 12:
        length, offset = int.from_bytes(head[8:12], order), 12
    else:
        length, offset = int.from_bytes(head[6:8], order), 8
    if length == 0xFFFFFFFF:  # encapsulated
        return None
    fh.seek(0, os.SEEK_END)
    return max(0, min(length, fh.tell() - start - offset))


def check_pixel_data(ds, what: str = "the file") -> None:
    """Refuse native PixelData shorter than Rows x Columns x frames x samples x bits say.

    GDCM pads such a file with voxels it makes up; ``what`` names the file in the
    message (``"the file"``, ``"slice s003.dcm"``).

    Raises
    ------
    ValueError
        ``"<what> is truncated: its PixelData holds N of the M bytes ..."``.
    """
    stored = getattr(ds, "pixel_bytes_stored", None)
    if stored is None or "Rows" not in ds:
        return
    from pydicom.pixels.utils import get_expected_length

    try:
        expected = int(get_expected_length(ds, "bytes"))
    except (AttributeError, KeyError, TypeError, ValueError):
        return
    if stored < expected:
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        raise ValueError(
            f"{what} is truncated: its PixelData holds {stored} of the {expected} bytes "
            f"that {ds.Rows} x {ds.Columns} pixels x {frames} frame(s) x "
            f"{ds.get('SamplesPerPixel', 1)} sample(s) x {ds.get('BitsAllocated')} bits "
            "declare; the missing pixels would have to be made up"
        )


def declared_values(ds) -> tuple[int, ...]:
    """``(frames, rows, columns[, samples])`` a header declares (no pixels read)."""
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    dims = (int(ds.get("NumberOfFrames", 1) or 1), int(ds.get("Rows", 0) or 0),
            int(ds.get("Columns", 0) or 0))  # fmt: skip
    return (*dims, samples) if samples > 1 else dims


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
