"""Conformance cases for files written here (SimpleITK, tifffile, pydicom) and for mask
round trips read back by nibabel and SimpleITK; :func:`all_rows` gathers every case."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import SimpleITK as sitk
import tifffile
from conformance_cases import (
    NIBABEL_DATA,
    Geometry,
    Row,
    check,
    dicom_file_cases,
    nifti_cases,
    refused,
    seg_cases,
)
from dicom_factory import axial_positions, series, stored_ct

from napari_res101unet import _writer
from napari_res101unet.io import read_image

_C, _S = np.cos(np.radians(10)), np.sin(np.radians(10))
OBLIQUE = tuple(
    (
        np.array([[_C, -_S, 0], [_S, _C, 0], [0, 0, 1]])
        @ np.array([[1, 0, 0], [0, _C, -_S], [0, _S, _C]])
    ).reshape(-1)
)  # rotations of 10 degrees about z and x
PYDICOM_IMAGES = [
    "CT_small.dcm", "MR_small.dcm", "MR_small_RLE.dcm", "MR_small_bigendian.dcm",
    "MR_small_implicit.dcm", "MR_small_jp2klossless.dcm", "JPEG2000.dcm",
    "JPEGLSNearLossless_16.dcm", "693_J2KI.dcm", "SC_rgb_rle.dcm", "SC_rgb_rle_2frame.dcm",
    "SC_rgb_rle_16bit.dcm", "SC_rgb_rle_16bit_2frame.dcm", "SC_rgb_jpeg_dcmtk.dcm",
    "SC_ybr_full_422_uncompressed.dcm", "examples_rgb_color.dcm", "examples_ybr_color.dcm",
    "ExplVR_BigEnd.dcm", "image_dfl.dcm", "rtdose.dcm", "rtdose_1frame.dcm",
    "rtdose_rle.dcm",
]  # fmt: skip
PYDICOM_SEGS = ["liver_1frame.dcm"]


def sitk_geometry(img) -> tuple[Geometry, np.ndarray]:
    return (
        Geometry(
            sitk.GetArrayFromImage(img).shape,
            tuple(img.GetSpacing())[::-1],
            tuple(img.GetOrigin())[::-1],
            tuple(img.GetDirection()),
        ),
        sitk.GetArrayFromImage(img),
    )


def sitk_cases(folder: Path) -> list[Row]:
    rng = np.random.default_rng(0)
    vol = rng.integers(-1000, 1500, (5, 14, 11)).astype(np.int16)
    rows = []
    for ext in (".nrrd", ".mha", ".nii.gz"):
        img = sitk.GetImageFromArray(vol)
        img.SetSpacing((0.7, 0.9, 2.5))
        img.SetOrigin((-120.0, 33.0, 410.5))
        img.SetDirection(OBLIQUE)
        path = folder / f"sitk_oblique{ext}"
        sitk.WriteImage(img, str(path))
        peer, values = sitk_geometry(sitk.ReadImage(str(path)))
        rows.append(check(path.name, "SimpleITK", peer, values, path))
    return rows


def tiff_cases(folder: Path) -> list[Row]:
    data = np.random.default_rng(1).integers(0, 4000, (4, 20, 24)).astype(np.uint16)
    imagej = folder / "imagej_um.tif"
    tifffile.imwrite(imagej, data, imagej=True, resolution=(4.0, 4.0),
                     metadata={"axes": "ZYX", "spacing": 2.0, "unit": "micron"})  # fmt: skip
    ome = folder / "ome_mixed.ome.tif"
    tifffile.imwrite(ome, data, ome=True, metadata={
        "axes": "ZYX", "PhysicalSizeZ": 1500.0, "PhysicalSizeZUnit": "nm",
        "PhysicalSizeY": 0.2, "PhysicalSizeYUnit": "µm",
        "PhysicalSizeX": 0.2, "PhysicalSizeXUnit": "µm"})  # fmt: skip
    rows = []
    with tifffile.TiffFile(imagej) as tif:
        num, den = tif.pages.first.tags["XResolution"].value
        peer = Geometry(tif.asarray().shape, (tif.imagej_metadata["spacing"], den / num,
                        den / num), None, None)  # fmt: skip
    rows.append(check(imagej.name, "tifffile (µm)", peer, data, imagej))
    with tifffile.TiffFile(ome) as tif:
        px = tifffile.xml2dict(tif.ome_metadata)["OME"]["Image"]["Pixels"]
        z_um = px["PhysicalSizeZ"] / 1000.0  # nm -> µm, the XY unit
        peer = Geometry(tif.asarray().shape, (z_um, px["PhysicalSizeY"], px["PhysicalSizeX"]),
                        None, None)  # fmt: skip
    rows.append(check(ome.name, "tifffile (µm)", peer, data, ome))
    return rows


def dicom_series_cases(folder: Path) -> list[Row]:
    stored = stored_ct((8, 16, 12))
    positions = axial_positions(8, step=3.0, origin=(-90.0, -70.0, -15.0))
    series(folder / "ct_series", stored[::-1], positions[::-1])
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder / "ct_series")))
    peer, values = sitk_geometry(reader.Execute())
    name = "pydicom-written CT series"
    return [check(name, "SimpleITK (GDCM)", peer, values, folder / "ct_series")]


def enhanced_case(folder: Path) -> Row:
    """An Enhanced CT (highdicom's legacy conversion of the series) against pydicom's
    per-frame positions, in stored frame order."""
    import pydicom
    from dicom_factory import enhanced

    path = enhanced(folder / "ct_series", folder / "enhanced_ct.dcm")
    ds = pydicom.dcmread(path)
    pos = np.array([f.PlanePositionSequence[0].ImagePositionPatient for f in
                    ds.PerFrameFunctionalGroupsSequence], float)  # fmt: skip
    shared = ds.SharedFunctionalGroupsSequence[0]
    iop = np.asarray(shared.PlaneOrientationSequence[0].ImageOrientationPatient, float)
    dy, dx = (float(v) for v in shared.PixelMeasuresSequence[0].PixelSpacing)
    step = pos[1] - pos[0]
    slice_dir = step / np.linalg.norm(step)
    direction = np.stack([iop[:3], iop[3:], slice_dir], 1).reshape(-1)
    rescale = shared.PixelValueTransformationSequence[0]  # pydicom's LUT reads only the top
    values = ds.pixel_array * float(rescale.RescaleSlope) + float(rescale.RescaleIntercept)
    peer = Geometry(values.shape, (float(np.linalg.norm(step)), dy, dx), tuple(pos[0][::-1]),
                    tuple(direction))  # fmt: skip
    return check("Enhanced CT (multi-frame)", "pydicom", peer, values, path)


def mask_round_trips(sources: list[Path], folder: Path) -> list[Row]:
    """Draw a mask on each source, save it with our writer, read it with a peer.

    Row: the source's geometry as its peer reads it, against our mask's geometry as
    nibabel (NIfTI) or SimpleITK (NRRD/MHA) reads it.
    """
    rows = []
    for src in sources:
        try:
            data, kwargs, _ = _layer(src)
        except ValueError as exc:
            rows.append(refused(f"mask on {src.name}", "-", "-", exc, False))
            continue
        spatial = data.shape[-3:] if data.ndim >= 3 else (1, *data.shape)
        mask = np.zeros(spatial, np.uint8)
        mask[..., : max(1, spatial[-2] // 2), : max(1, spatial[-1] // 3)] = 1
        meta = {
            "scale": tuple(kwargs["scale"])[-3:],
            "translate": tuple(kwargs["translate"])[-3:],
            "metadata": kwargs["metadata"],
        }
        if kwargs["metadata"].get("format") in ("NRRD", "MetaImage"):
            ext = ".nrrd" if kwargs["metadata"]["format"] == "NRRD" else ".mha"
        else:
            ext = ".nii.gz"
        out = folder / f"mask_of_{src.name.replace('.', '_')}{ext}"
        _writer.write_labels(str(out), mask, meta)
        rows.append(_compare_mask(src, out, mask, kwargs))
    return rows


def _layer(path: Path):
    from napari_res101unet._reader import layer_data

    return layer_data(read_image(path, labels=False))


def _source_by_peer(src: Path, shape) -> Geometry:
    """The source's spatial geometry as its peer library reads it (TIFF: µm -> mm)."""
    if src.name.endswith((".nii", ".nii.gz")):
        return Geometry(shape, *_nib_geo(nib.load(str(src)).affine))
    if src.suffix == ".tif":
        with tifffile.TiffFile(src) as tif:
            num, den = tif.pages.first.tags["XResolution"].value
            z = tif.imagej_metadata["spacing"]
        return Geometry(shape, (z / 1000, den / num / 1000, den / num / 1000), (0, 0, 0), None)
    if src.is_dir():
        reader = sitk.ImageSeriesReader()
        reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(src)))
        img = reader.Execute()
    else:
        img = sitk.ReadImage(str(src))
    geo, _ = sitk_geometry(img)
    return Geometry(shape, geo.spacing, geo.origin, geo.direction)


def _compare_mask(src: Path, out: Path, mask: np.ndarray, kwargs) -> Row:
    if out.suffix == ".gz":
        back = nib.load(str(out))
        got = Geometry(np.asanyarray(back.dataobj).T.shape, *_nib_geo(back.affine))
        peer_name = "nibabel (mask)"
    else:
        img = sitk.ReadImage(str(out))
        got = Geometry(sitk.GetArrayFromImage(img).shape, tuple(img.GetSpacing())[::-1],
                       tuple(img.GetOrigin())[::-1], tuple(img.GetDirection()))  # fmt: skip
        peer_name = "SimpleITK (mask)"
    want = _source_by_peer(src, mask.shape)
    ok = (
        tuple(got.shape) == tuple(want.shape)
        and np.allclose(got.spacing, want.spacing, atol=1e-6)
        and np.allclose(got.origin, want.origin, atol=1e-3)
        and (want.direction is None or np.allclose(got.direction, want.direction, atol=1e-4))
    )
    return Row(f"mask on {src.name}", peer_name, want.text(), got.text(), bool(ok),
               "" if ok else "mask geometry differs from the source")  # fmt: skip


def _nib_geo(affine):
    sizes = nib.affines.voxel_sizes(affine)
    d = np.diag([-1.0, -1.0, 1.0]) @ (affine[:3, :3] / sizes)
    origin = np.diag([-1.0, -1.0, 1.0]) @ affine[:3, 3]
    return tuple(sizes[::-1]), tuple(origin[::-1]), tuple(d.reshape(-1))


def nibabel_written(folder: Path) -> list[Path]:
    """NIfTI files whose headers tripped the old reader, written by nibabel."""
    vol = np.random.default_rng(2).integers(-1000, 1000, (12, 10, 4)).astype(np.int16)
    qform = np.diag([0.8, 0.8, 2.5, 1.0])
    sform = qform.copy()
    sform[:3, 3] = (13.0, -4.0, 20.0)
    img = nib.Nifti1Image(vol, qform)
    img.set_qform(qform, code=1)
    img.set_sform(sform, code=2)
    nib.save(img, folder / "nib_sform_not_qform.nii.gz")
    shear = np.array([[1.0, 0.3, 0, -10], [0, 1.0, 0, 5], [0, 0, 2.0, 7], [0, 0, 0, 1]])
    img = nib.Nifti1Image(vol, shear)
    img.set_qform(None, code=0)
    nib.save(img, folder / "nib_sheared_sform.nii.gz")
    img = nib.Nifti1Image((vol + 1024).astype(np.uint16), np.diag([0.7, 0.7, 3.0, 1.0]))
    img.header.set_slope_inter(1.0, -1024.0)
    nib.save(img, folder / "nib_uint16_intercept.nii.gz")
    img = nib.Nifti1Image(vol, np.diag([0.8, 0.7, 2.5, 1.0]))  # no sform, no qform
    img.set_sform(None, code=0)
    img.set_qform(None, code=0)
    nib.save(img, folder / "nib_codes_0_0.nii.gz")
    return sorted(folder.glob("nib_*.nii.gz"))


def tilted_series_row(folder: Path) -> Row:
    """A 20-degree gantry tilt: GDCM stacks it as a regular volume; ours refuses it."""
    positions = axial_positions(6, tilt_deg=20)
    drift = float(np.hypot(*np.subtract(positions[-1], positions[0])[:2]))
    series(folder / "tilted", stored_ct(), positions)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder / "tilted")))
    peer, _ = sitk_geometry(reader.Execute())
    try:
        read_image(folder / "tilted")
    except ValueError as exc:
        seen = f"{peer.text()} (slices misplaced by up to {drift:.1f} mm)"
        return refused("20° gantry-tilted CT series", "SimpleITK (GDCM)", seen, exc, True)
    return Row("20° gantry-tilted CT series", "SimpleITK (GDCM)", peer.text(), "stacked",
               False, "stacked silently")  # fmt: skip


def all_rows(folder: Path) -> list[Row]:
    """Every conformance case; files are written under ``folder``."""
    nifti = sorted(p for p in NIBABEL_DATA.glob("*.nii*") if "dconn" not in p.name)
    nifti += nibabel_written(folder)
    rows = nifti_cases(nifti)
    rows += dicom_file_cases(PYDICOM_IMAGES)
    rows += seg_cases(PYDICOM_SEGS)
    rows += sitk_cases(folder)
    rows += tiff_cases(folder)
    rows += dicom_series_cases(folder)
    rows.append(enhanced_case(folder))
    rows.append(tilted_series_row(folder))
    written = [folder / f"sitk_oblique{e}" for e in (".nrrd", ".mha", ".nii.gz")]
    sources = [*nifti, *written, folder / "ct_series", folder / "imagej_um.tif"]
    rows += mask_round_trips([s for s in sources if s.exists()], folder)
    from conformance_more import more_rows  # issue 24's cases (they import from here)

    rows += more_rows(folder)
    return rows


def markdown(rows: list[Row]) -> str:
    lines = ["| file | peer | peer geometry | ours | match |", "|---|---|---|---|---|"]
    for r in rows:
        match = ("yes" if r.match else "**no**") + (f" ({r.note})" if r.note else "")
        lines.append(f"| {r.file} | {r.peer} | {r.peer_geometry} | {r.ours} | {match} |")
    return "\n".join(lines)
