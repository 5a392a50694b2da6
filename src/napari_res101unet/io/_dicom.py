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

from pathlib import Path

import numpy as np

from ._content import narrow_integers
from ._dicom_header import (
    SEG_SOP,
    check_pixel_data,
    declared_values,
    dicom_non_image,
    modality_into,
    num,
)
from ._dicom_series import Series, scan_folder, stack_of
from ._image import ImageData
from ._limits import check_count

__all__ = ["SEG_SOP", "dicom_non_image", "read_dicom_folder", "scan_folder"]


def read_dicom_folder(
    folder: Path, series: str | None = None, max_values: int | None = None
) -> ImageData:
    """Read one series of ``folder``: ``series`` (an id) or the largest image series.

    ``max_values``: refuse a series whose headers declare more values (slices x rows x
    columns x samples) before any pixel is read.
    """
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
    if max_values is not None:
        _check_size(chosen, max_values)
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


def _check_size(s: Series, limit: int) -> None:
    """The series' declared values (all files) against the pixel limit, before reading."""
    counts = [declared_values(ds) for ds in s.headers]  # one matrix size per series
    shape = (sum(c[0] for c in counts), *counts[0][1:])
    check_count(f"DICOM series {s.id} ({len(s.files)} slices)", shape, limit)


def _read_stack(s: Series) -> ImageData:
    """A checked single-frame series: sorted, rescaled per slice when needed."""
    import SimpleITK as sitk

    for path, ds in zip(s.files, s.headers):
        check_pixel_data(ds, f"slice {path.name}")
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
