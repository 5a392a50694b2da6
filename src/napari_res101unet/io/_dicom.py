"""DICOM: what a file is (pydicom headers), series in a folder, and reading them.

Headers are read with pydicom (without pixel data) to decide what an object is and
where its slices lie; pixels are decoded by SimpleITK (GDCM), except 16-bit colour,
which GDCM decodes with wrong colours and pydicom decodes right.

* Objects without an image (RT Plan, RT Structure Set, Structured Report, waveform/ECG,
  encapsulated PDF, presentation state...) are refused with a message saying what they
  are; :func:`describe` names them from the SOP Class UID.
* A folder is split into series by ``SeriesInstanceUID`` *and* orientation and matrix
  size, so a localizer's three planes are three series. The largest image series is
  opened unless another is asked for; ``metadata["series"]`` lists them all.
* A series' geometry is checked by :func:`._dicom_geometry.stack_geometry` (tilt, gaps,
  duplicates are refused). Rescale slope/intercept that differ between slices give
  float pixels (each slice rescaled with its own), never truncated integers.
* Single files (RT Dose scaling, 16-bit colour, fallbacks) are read by
  :mod:`._dicom_file`; DICOM SEG as labels by :mod:`._dicom_segread`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ._content import narrow_integers
from ._dicom_geometry import StackGeometry, orientation_name, stack_geometry
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
_HEADER_TAGS = [
    "SOPClassUID", "SeriesInstanceUID", "SeriesDescription", "Modality", "Rows", "Columns",
    "ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "RescaleSlope",
    "RescaleIntercept", "NumberOfFrames", "InstanceNumber", "SOPInstanceUID",
    "PhotometricInterpretation", "BitsAllocated", "DoseGridScaling", "DoseUnits",
    "SamplesPerPixel",
]  # fmt: skip


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


@dataclass
class Series:
    """Files of one series with one orientation and matrix size."""

    uid: str
    orientation: str
    files: list[Path] = field(default_factory=list)
    headers: list = field(default_factory=list)
    id: str = ""
    kind: str = "image"  # "image", "seg" or what describe() said

    def summary(self) -> dict:
        ds = self.headers[0]
        return {
            "id": self.id,
            "kind": self.kind,
            "orientation": self.orientation,
            "files": len(self.files),
            "modality": str(ds.get("Modality", "")),
            "description": str(ds.get("SeriesDescription", "")),
        }


def scan_folder(folder: Path) -> list[Series]:
    """The series of a folder's DICOM files, largest image series first."""
    groups: dict[tuple, Series] = {}
    for path in sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")):
        if not is_dicom_file(path):
            continue
        ds = header(path)
        if ds is None:
            continue
        kind = describe(ds) or ("seg" if sop_class(ds) == SEG_SOP else "image")
        iop = ds.get("ImageOrientationPatient")
        orient = orientation_name(iop) if iop is not None and kind == "image" else "-"
        key = (
            str(ds.get("SeriesInstanceUID", "")),
            kind,
            None if iop is None else tuple(np.round(np.asarray(iop, float), 3)),
            ds.get("Rows"),
            ds.get("Columns"),
        )
        group = groups.setdefault(key, Series(key[0], orient, kind=kind))
        group.files.append(path)
        group.headers.append(ds)
    found = sorted(groups.values(), key=lambda s: (s.kind != "image", -len(s.files)))
    per_uid: dict[str, int] = {}
    for s in found:
        per_uid[s.uid] = per_uid.get(s.uid, 0) + 1
    seen: dict[str, int] = {}
    for s in found:
        seen[s.uid] = seen.get(s.uid, 0) + 1
        s.id = s.uid if per_uid[s.uid] == 1 else f"{s.uid}/{s.orientation}{seen[s.uid]}"
    return found


def read_dicom_folder(folder: Path, series: str | None = None) -> ImageData:
    """Read one series of ``folder``: ``series`` (an id) or the largest image series."""
    found = scan_folder(folder)
    images = [s for s in found if s.kind == "image"]
    if series is not None:
        chosen = next((s for s in found if series in (s.id, s.uid)), None)
        if chosen is None:
            ids = ", ".join(s.id for s in found)
            raise ValueError(f"no series {series!r} in {folder}; it holds: {ids}")
    elif images:
        chosen = images[0]
    elif found and found[0].kind == "seg":
        chosen = found[0]
    else:
        kinds = sorted({s.kind for s in found}) or ["no readable DICOM files"]
        raise ValueError(f"the folder holds no image series, only {', '.join(kinds)}")
    if chosen.kind not in ("image", "seg"):
        raise ValueError(f"series {chosen.id} is {chosen.kind}: no image to show")
    if chosen.kind == "seg":
        from ._dicom_segread import read_seg

        image = read_seg(chosen.files[0])
    elif len(chosen.files) == 1:
        from ._dicom_file import read_dicom_file

        image = read_dicom_file(chosen.files[0], chosen.headers[0])
    else:
        image = _read_stack(chosen)
    _note_series(image, found, chosen)
    return image


def _note_series(image: ImageData, found: list[Series], chosen: Series) -> None:
    image.metadata.update(
        series_id=chosen.id,
        series_count=len(found),
        series=[s.summary() for s in found],
        slices=len(chosen.files),
    )
    if len(found) > 1:
        others = "; ".join(
            f"{s.id} ({s.kind if s.kind != 'image' else s.orientation}, {len(s.files)} files)"
            for s in found
            if s is not chosen
        )
        image.metadata.setdefault("notes", []).append(
            f"{len(found)} series in this folder; opened {chosen.id} ({chosen.orientation}, "
            f"{len(chosen.files)} files). Others: {others}. Pick one with "
            "read_image(folder, series=id)."
        )


def stack_of(s: Series):
    """The checked :class:`._dicom_geometry.StackGeometry` of a single-frame series."""
    label = f"{s.id} ({s.orientation}, {len(s.files)} slices)"
    frames = [int(ds.get("NumberOfFrames", 1) or 1) for ds in s.headers]
    if max(frames) > 1:
        raise ValueError(f"DICOM series {label} holds several multi-frame files; open one")
    ds0 = s.headers[0]
    placed = [ds.get("ImagePositionPatient") is not None for ds in s.headers]
    if not any(placed):  # screenshots, ultrasound: frames without a place in space
        order = sorted(
            range(len(s.headers)), key=lambda i: int(s.headers[i].get("InstanceNumber") or 0)
        )
        dy, dx = (float(v) for v in ds0.get("PixelSpacing", (1.0, 1.0)))
        return StackGeometry(tuple(order), (1.0, dy, dx), (0.0, 0.0, 0.0), None)
    if not all(placed) or "PixelSpacing" not in ds0 or "ImageOrientationPatient" not in ds0:
        raise ValueError(
            f"DICOM series {label}: some slices lack ImagePositionPatient, "
            "ImageOrientationPatient or PixelSpacing, so they cannot be placed in space; "
            "open the files one by one"
        )
    return stack_geometry(
        [ds.ImagePositionPatient for ds in s.headers],
        ds0.ImageOrientationPatient, ds0.PixelSpacing, label,
    )  # fmt: skip


def _read_stack(s: Series) -> ImageData:
    """A checked single-frame series: sorted, rescaled per slice when needed."""
    import SimpleITK as sitk

    geo = stack_of(s)
    ds0 = s.headers[0]
    files = [str(s.files[i]) for i in geo.order]
    rescale = {(num(ds, "RescaleSlope", 1.0), num(ds, "RescaleIntercept", 0.0))
               for ds in s.headers}  # fmt: skip
    rgb = int(ds0.get("SamplesPerPixel", 1) or 1) > 1
    if len(rescale) == 1:
        reader = sitk.ImageSeriesReader()
        reader.SetFileNames(files)
        data = sitk.GetArrayFromImage(reader.Execute())
        data = data if rgb else narrow_integers(data)
    else:  # GDCM would use the first slice's pixel type for all: read each on its own
        data = np.stack([sitk.GetArrayFromImage(sitk.ReadImage(f, sitk.sitkFloat64))[0]
                         for f in files])  # fmt: skip
        data = narrow_integers(data)
        if data.dtype.kind == "f":
            data = data.astype(np.float32)
    image = ImageData(
        data, geo.spacing, geo.origin, geo.direction, rgb=rgb, metadata={"unit": "mm"}
    )
    if geo.direction is None:
        image.metadata.setdefault("notes", []).append(
            "the slices have no position in space (no ImagePositionPatient): they are "
            "stacked in InstanceNumber order with a slice spacing of 1, not a physical one"
        )
    if len(rescale) > 1:
        image.metadata["rescale"] = "per slice (RescaleSlope/Intercept differ between slices)"
    modality_into(image, ds0)
    return image


def num(ds, name: str, default: float) -> float:
    value = ds.get(name)
    return default if value in (None, "") else float(value)


def modality_into(image: ImageData, ds) -> None:
    modality = str(ds.get("Modality", "") or "").strip()
    if modality:
        image.metadata["modality"] = modality
