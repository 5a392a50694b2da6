"""The series of a DICOM folder: grouped by series UID, orientation and matrix size, and
the checked slice geometry of one series."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ._dicom_geometry import StackGeometry, orientation_name, stack_geometry
from ._dicom_header import SEG_SOP, describe, header, sop_class
from ._dicom_mosaic import is_mosaic
from ._formats import is_dicom_file


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


def stack_of(s: Series):
    """The checked :class:`._dicom_geometry.StackGeometry` of a single-frame series."""
    label = f"{s.id} ({s.orientation}, {len(s.files)} slices)"
    frames = [int(ds.get("NumberOfFrames", 1) or 1) for ds in s.headers]
    if max(frames) > 1:
        raise ValueError(f"DICOM series {label} holds several multi-frame files; open one")
    if any(is_mosaic(ds) for ds in s.headers):
        raise ValueError(
            f"DICOM series {label} holds {len(s.files)} Siemens mosaics: each file is a "
            "whole volume (one time point or diffusion direction); open one file"
        )
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
