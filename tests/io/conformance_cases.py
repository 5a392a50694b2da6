"""Conformance of the reader and writer with the peer libraries, file by file.

Every case reads one file with our reader and with the library that defines the format
in the field (nibabel for NIfTI, pydicom (or highdicom for SEG) for DICOM files, GDCM
through SimpleITK for DICOM series, SimpleITK for NRRD/MetaImage, tifffile for TIFF)
and compares shape, spacing, origin, direction and values in one convention: numpy axis
order ``(..., Z, Y, X)``, millimetres (µm for microscopy), LPS origin and ITK direction.
Mask round trips write a label map drawn on the image with our npe2 writer and read it
back with nibabel or SimpleITK.

The files are the test files shipped inside nibabel and pydicom (skipped when absent;
nothing is downloaded) and files written here with SimpleITK, tifffile and pydicom.
Used by tests/io/test_conformance.py and scripts/conformance_table.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
from pydicom.pixels import apply_modality_lut

from napari_res101unet.io import read_image

NIBABEL_DATA = Path(nib.__file__).parent / "tests" / "data"
PYDICOM_DATA = Path(pydicom.__file__).parent / "data" / "test_files"
LPS = np.diag([-1.0, -1.0, 1.0])
LOSSY = {"1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.81"}


@dataclass
class Geometry:
    """Shape, spacing, origin (numpy order) and ITK direction; ``None`` = not stated."""

    shape: tuple
    spacing: tuple | None
    origin: tuple | None
    direction: tuple | None

    def text(self) -> str:
        sp = "-" if self.spacing is None else ",".join(f"{v:.4g}" for v in self.spacing)
        org = "-" if self.origin is None else ",".join(f"{v:.5g}" for v in self.origin)
        return f"{'x'.join(map(str, self.shape))}; sp {sp}; org {org}; {axcodes(self.direction)}"


@dataclass
class Row:
    file: str
    peer: str
    peer_geometry: str
    ours: str
    match: bool
    note: str = ""


def axcodes(direction) -> str:
    """Orientation letters (nibabel's) of an ITK direction; ``~`` when oblique."""
    if direction is None:
        return "dir -"
    d = np.asarray(direction, float)
    n = round(d.size**0.5)
    full = np.eye(max(n, 3))
    full[:n, :n] = d.reshape(n, n)  # a 2D direction: its plane in 3D
    d = LPS @ full[:3, :3]
    affine = np.eye(4)
    affine[:3, :3] = d
    oblique = np.abs(d).max(axis=0).min() < 0.999
    return "".join(nib.aff2axcodes(affine)) + ("~" if oblique else "")


def compare(name, peer_name, peer: Geometry, peer_values, image, *, atol=0.0) -> Row:
    """Row for ``image`` (our ImageData) against the peer's geometry and values."""
    ours = Geometry(image.data.shape, image.spacing, image.origin, image.direction)
    problems = []
    if tuple(ours.shape) != tuple(peer.shape):
        problems.append("shape")
    for field, tol in (("spacing", 1e-4), ("origin", 1e-3), ("direction", 1e-4)):
        want, got = getattr(peer, field), getattr(ours, field)
        if want is None:
            continue
        if got is None or len(got) != len(want) or not np.allclose(got, want, atol=tol):
            problems.append(field)
    if peer_values is not None and "shape" not in problems:
        a, b = np.asarray(image.data, float), np.asarray(peer_values, float)
        diff = np.nanmax(np.abs(a - b)) if a.size else 0.0
        scale = np.nanmax(np.abs(b)) if b.size else 0.0
        float32 = 1e-6 * scale if image.data.dtype == np.float32 else 0.0  # our float32
        if not (np.array_equal(np.isnan(a), np.isnan(b)) and diff <= atol + float32):
            problems.append(f"values (max diff {diff:g})")
    note = f"lossy: values within {atol:g}" if atol else ""
    if problems:
        note = "differs: " + ", ".join(problems)
    return Row(name, peer_name, peer.text(), ours.text(), not problems, note)


def check(name, peer_name, peer: Geometry, values, path, *, atol=0.0, labels=False) -> Row:
    """Read ``path`` with our reader and compare; a refusal is a failed row."""
    try:
        image = read_image(path, labels=labels)
    except ValueError as exc:
        return refused(name, peer_name, peer.text(), exc, False)
    return compare(name, peer_name, peer, values, image, atol=atol)


def refused(name: str, peer: str, peer_geometry: str, exc: Exception, expected: bool) -> Row:
    message = re.sub(r"^cannot read .+? as [\w ]+: ", "", str(exc))
    message = re.sub(r"^/\S+: ", "", message)  # a leading path
    message = re.split(r"\.\s+(?=[A-Z])", message.split("): ", 1)[-1])[0]
    return Row(name, peer, peer_geometry, f"refused: {message}", expected, "")


# --- NIfTI: nibabel -------------------------------------------------------------------


def nibabel_geometry(img) -> tuple[Geometry, np.ndarray]:
    """nibabel's own reading (``img.affine``, scaled data) in our convention."""
    data = np.asanyarray(img.dataobj)
    if data.ndim == 2:
        data = data[:, :, None]
    data = data.transpose(tuple(range(data.ndim))[::-1])
    sizes = nib.affines.voxel_sizes(img.affine)
    direction = LPS @ (img.affine[:3, :3] / sizes)
    origin = LPS @ img.affine[:3, 3]
    extra = [float(z) for z in img.header.get_zooms()[3 : data.ndim]][::-1]
    return (
        Geometry(
            data.shape,
            (*extra, *sizes[::-1]),
            (*[0.0] * len(extra), *origin[::-1]),
            tuple(direction.reshape(-1)),
        ),
        data,
    )


def nifti_cases(paths) -> list[Row]:
    rows = []
    for path in paths:
        img = nib.load(str(path))
        if not isinstance(img, nib.Nifti1Image):
            continue
        peer, values = nibabel_geometry(img)
        rows.append(check(path.name, "nibabel", peer, values, path))
    return rows


# --- DICOM files: pydicom ---------------------------------------------------------------


def pydicom_geometry(ds) -> tuple[Geometry, np.ndarray]:
    """pydicom's pixels (modality LUT or dose scaling) and header geometry."""
    shared = ds.get("SharedFunctionalGroupsSequence", [None])[0]
    frame0 = ds.get("PerFrameFunctionalGroupsSequence", [None])[0]

    def attr(name, seq):
        if name in ds:
            return ds.get(name)
        for group in (shared, frame0):
            if group is not None and seq in group and name in group[seq][0]:
                return group[seq][0].get(name)
        return None

    values = ds.pixel_array
    colour = int(ds.get("SamplesPerPixel", 1)) > 1
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    values = values.reshape((frames, *values.shape[-3 if colour else -2 :]))
    if "DoseGridScaling" in ds:
        values = values * float(ds.DoseGridScaling)
    elif not colour:
        values = apply_modality_lut(values, ds)
    spacing = attr("PixelSpacing", "PixelMeasuresSequence")
    ipp = attr("ImagePositionPatient", "PlanePositionSequence")
    iop = attr("ImageOrientationPatient", "PlaneOrientationSequence")
    dz = None
    if "GridFrameOffsetVector" in ds and frames > 1:
        dz = float(np.diff([float(v) for v in ds.GridFrameOffsetVector])[0])
    direction = None
    if iop is not None:
        row, col = np.asarray(iop[:3], float), np.asarray(iop[3:], float)
        direction = tuple(np.stack([row, col, np.cross(row, col)], 1).reshape(-1))
    sp = None
    if spacing is not None and (frames == 1 or dz is not None):
        sp = ((dz if dz is not None else 0.0), float(spacing[0]), float(spacing[1]))
    org = None if ipp is None else tuple(float(v) for v in ipp)[::-1]
    return Geometry(values.shape, sp, org, direction), values


def dicom_file_cases(names) -> list[Row]:
    rows = []
    for name in names:
        path = PYDICOM_DATA / name
        if not path.is_file():
            continue
        ds = pydicom.dcmread(path)
        peer, values = pydicom_geometry(ds)
        if peer.spacing is not None and peer.spacing[0] == 0.0:  # one slice: no z step
            dz = ds.get("SpacingBetweenSlices") or ds.get("SliceThickness") or 1.0
            peer.spacing = (float(dz), *peer.spacing[1:])
        lossy = str(ds.file_meta.TransferSyntaxUID) in LOSSY
        rows.append(check(name, "pydicom", peer, values, path, atol=2 if lossy else 0))
    return rows


def seg_cases(names) -> list[Row]:
    import highdicom as hd

    rows = []
    for name in names:
        path = PYDICOM_DATA / name
        if not path.is_file():
            continue
        volume = hd.seg.segread(str(path)).get_volume(combine_segments=True)
        aff, array = np.asarray(volume.affine, float), np.asarray(volume.array)
        normal = np.cross(aff[:3, 2], aff[:3, 1])  # series convention: slices along row x col
        if aff[:3, 0] @ normal < 0:
            aff[:3, 3] += aff[:3, 0] * (array.shape[0] - 1)
            aff[:3, 0] *= -1
            array = array[::-1]
        sizes = np.linalg.norm(aff[:3, :3], axis=0)
        peer = Geometry(
            array.shape, tuple(sizes), tuple(aff[:3, 3][::-1]),
            tuple((aff[:3, :3] / sizes)[:, ::-1].reshape(-1)),
        )  # fmt: skip
        rows.append(check(name, "highdicom", peer, array, path, labels=None))
    return rows
