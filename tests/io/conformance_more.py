"""Conformance cases of issue 24: Enhanced CT with per-frame rescale and frames stored out
of order, big-endian files, NIfTI with sform/qform codes 0/0, 3D Slicer's vector
``.seg.nrrd``, a Siemens mosaic, 4D masks (time step kept, or the format refused) and a
2D rotated MetaImage mask saved as NIfTI. Each is read by its peer (pydicom per frame,
nibabel's MosaicWrapper, SimpleITK, nibabel) and by us; :func:`more_rows` gathers them."""

from __future__ import annotations

import gzip
import shutil
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import SimpleITK as sitk
from conformance_cases import NIBABEL_DATA, PYDICOM_DATA, Geometry, Row, check, refused
from conformance_written import _nib_geo, sitk_geometry
from dicom_factory import (
    axial_positions,
    enhanced,
    per_frame_reference,
    series,
    shuffle_frames,
    stored_ct,
)

from napari_res101unet import _writer
from napari_res101unet._reader import layer_data
from napari_res101unet.io import read_image

NICOM_DATA = Path(nib.__file__).parent / "nicom" / "tests" / "data"
SLOPES = [1.0, 2.0, 0.5, 1.0, 3.0, 1.0]


def _layer(path: Path, labels=False):
    data, kwargs, _ = layer_data(read_image(path, labels=labels))
    return data, {k: kwargs[k] for k in ("scale", "translate", "metadata")}


def _pydicom_frames(path: Path, sort: bool) -> tuple[Geometry, np.ndarray]:
    """pydicom's frames (each with its own rescale) and positions; sorted along the
    slice normal when ``sort``, else in file order."""
    import pydicom

    values, pos, iop = per_frame_reference(path)
    if sort:
        order = np.argsort(pos @ np.cross(iop[:3], iop[3:]))
        values, pos = values[order], pos[order]
    shared = pydicom.dcmread(path).SharedFunctionalGroupsSequence[0]
    dy, dx = (float(v) for v in shared.PixelMeasuresSequence[0].PixelSpacing)
    step = pos[1] - pos[0]
    direction = np.stack([iop[:3], iop[3:], step / np.linalg.norm(step)], axis=1)
    geo = Geometry(values.shape, (float(np.linalg.norm(step)), dy, dx), tuple(pos[0][::-1]),
                   tuple(direction.reshape(-1)))  # fmt: skip
    return geo, values


def enhanced_rows(folder: Path) -> list[Row]:
    series(folder / "ct_slopes", stored_ct((6, 16, 12)), axial_positions(6), slopes=SLOPES)
    scaled = enhanced(folder / "ct_slopes", folder / "enhanced_slopes.dcm")
    shuffled = folder / "enhanced_shuffled.dcm"
    shutil.copy(scaled, shuffled)
    shuffle_frames(shuffled, [3, 0, 5, 1, 4, 2])
    rows = []
    for name, path, sort in (
        ("Enhanced CT, per-frame rescale", scaled, False),
        ("Enhanced CT, frames stored out of order", shuffled, True),
    ):
        peer, values = _pydicom_frames(path, sort)  # fmt: skip
        rows.append(check(name, "pydicom (per frame)", peer, values, path))
    peer, _ = _pydicom_frames(shuffled, True)
    rows.append(_mask_row("mask on Enhanced CT, frames out of order", shuffled, peer, folder))
    return rows


def _mask_row(name: str, src: Path, want: Geometry, folder: Path) -> Row:
    """A mask drawn on ``src``'s layer, saved as NIfTI, read back by nibabel."""
    data, meta = _layer(src)
    mask = np.zeros(data.shape[-3:], np.uint8)
    mask[:, : data.shape[-2] // 2, : data.shape[-1] // 3] = 1
    out = folder / f"mask_{src.stem}.nii.gz"
    _writer.write_labels(str(out), mask, meta)
    back = nib.load(out)
    got = Geometry(np.asanyarray(back.dataobj).T.shape, *_nib_geo(back.affine))
    want = Geometry(mask.shape, want.spacing, want.origin, want.direction)
    return _same(name, "nibabel (mask)", want, got)


def _same(name: str, peer: str, want: Geometry, got: Geometry) -> Row:
    ok = tuple(want.shape) == tuple(got.shape) and all(
        np.allclose(getattr(got, f), getattr(want, f), atol=1e-3)
        for f in ("spacing", "origin", "direction")
        if getattr(want, f) is not None
    )
    return Row(name, peer, want.text(), got.text(), bool(ok), "" if ok else "geometry differs")


def big_endian_rows() -> list[Row]:
    """The retired big-endian syntax: pydicom's own files (images, RT Dose, SEG)."""
    from conformance_cases import dicom_file_cases

    rows = dicom_file_cases(["rtdose_expb.dcm", "rtdose_expb_1frame.dcm", "MR_small_expb.dcm"])
    seg = PYDICOM_DATA / "liver_expb_1frame.dcm"
    if seg.is_file():
        try:
            read_image(seg)
            rows.append(Row(seg.name, "highdicom", "cannot read it (little endian only)",
                            "read", False, "read without highdicom?"))  # fmt: skip
        except ValueError as exc:  # our words, not highdicom's internal ones
            rows.append(refused(seg.name, "highdicom", "cannot read it (little endian only)",
                                exc, "big-endian" in str(exc)))  # fmt: skip
    return rows


def codes_00_itk_row(folder: Path) -> Row:
    """ITK places a codes-0/0 NIfTI otherwise than nibabel: the mask must follow it."""
    src = folder / "nib_codes_0_0.nii.gz"
    data, meta = _layer(src)
    out = folder / "mask_of_codes_0_0.nii.gz"
    _writer.write_labels(str(out), (data > 400).astype(np.uint8), meta)
    want, _ = sitk_geometry(sitk.ReadImage(str(src)))
    got, _ = sitk_geometry(sitk.ReadImage(str(out)))
    return _same(f"mask on {src.name} (ITK)", "SimpleITK (mask)", want, got)


SEG_NRRD = """NRRD0004
type: unsigned char
dimension: 4
space: left-posterior-superior
sizes: 2 11 14 5
space directions: none (0.7,0,0) (0,0.9,0) (0,0,2.5)
kinds: list domain domain domain
encoding: raw
space origin: (-120,33,410.5)
Segment0_ID:=liver
Segment0_Name:=liver
Segment0_Layer:=0
Segment0_LabelValue:=1
Segment1_ID:=tumour
Segment1_Name:=tumour
Segment1_Layer:=1
Segment1_LabelValue:=1

"""


def slicer_overlapping_seg(path: Path) -> tuple[Path, np.ndarray]:
    """A 3D Slicer segmentation whose two segments overlap, so Slicer stores them in two
    layers: a 4D NRRD whose first axis is a ``list`` (written as Slicer writes it)."""
    layers = np.zeros((2, 5, 14, 11), np.uint8)  # (layer, Z, Y, X)
    layers[0, 1:4, 2:8, 2:6] = 1
    layers[1, 2:5, 5:12, 4:9] = 1  # overlaps layer 0
    raw = np.ascontiguousarray(layers.transpose(1, 2, 3, 0)).tobytes()  # list axis fastest
    path.write_bytes(SEG_NRRD.encode() + raw)
    return path, layers


def vector_nrrd_row(folder: Path) -> Row:
    """3D Slicer's overlapping segments: one label layer per vector component."""
    path, _ = slicer_overlapping_seg(folder / "slicer_overlap.seg.nrrd")
    img = sitk.ReadImage(str(path))
    arr = np.moveaxis(sitk.GetArrayFromImage(img), -1, 0)
    peer = Geometry(arr.shape, (1.0, *tuple(img.GetSpacing())[::-1]),
                    (0.0, *tuple(img.GetOrigin())[::-1]), tuple(img.GetDirection()))  # fmt: skip
    return check(path.name, "SimpleITK (vector)", peer, arr, path, labels=None)


def mosaic_row(folder: Path) -> list[Row]:
    """A Siemens mosaic shipped with nibabel, against nibabel's MosaicWrapper."""
    import pydicom

    packed = NICOM_DATA / "siemens_dwi_1000.dcm.gz"
    if not packed.is_file():
        return []
    path = folder / "siemens_dwi_1000.dcm"
    path.write_bytes(gzip.decompress(packed.read_bytes()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from nibabel.nicom import dicomwrappers
    wrapper = dicomwrappers.wrapper_from_data(pydicom.dcmread(path))
    data, aff = wrapper.get_data(), np.asarray(wrapper.affine, float)
    size = np.linalg.norm(aff[:3, :3], axis=0)
    unit = aff[:3, :3] / size
    direction = np.stack([unit[:, 1], unit[:, 0], unit[:, 2]], axis=1)
    peer = Geometry((data.shape[2], *data.shape[:2]), (size[2], size[0], size[1]),
                    tuple(aff[:3, 3][::-1]), tuple(direction.reshape(-1)))  # fmt: skip
    return [check(f"{path.name} (mosaic)", "nibabel (MosaicWrapper)", peer,
                  data.transpose(2, 0, 1), path)]  # fmt: skip


def four_d_rows(folder: Path) -> list[Row]:
    """A 4D mask on a 4D NIfTI: NIfTI keeps the time step and the direction; NRRD cannot
    keep the time step's unit and is refused."""
    src = NIBABEL_DATA / "example4d.nii.gz"
    if not src.is_file():
        return []
    from conformance_cases import nibabel_geometry

    data, meta = _layer(src)
    mask = (data > np.median(data)).astype(np.uint8)
    out = folder / "mask4d_of_example4d.nii.gz"
    _writer.write_labels(str(out), mask, meta)
    want, _ = nibabel_geometry(nib.load(src))
    got, _ = nibabel_geometry(nib.load(out))
    rows = [_same(f"4D mask on {src.name}", "nibabel (mask)", want, got)]
    try:
        _writer.write_labels(str(folder / "mask4d.nrrd"), mask, meta)
        rows.append(Row(f"4D mask on {src.name} as NRRD", "SimpleITK (mask)", want.text(),
                        "written", False, "time step written without its unit"))  # fmt: skip
    except ValueError as exc:
        rows.append(refused(f"4D mask on {src.name} as NRRD", "SimpleITK (mask)",
                            "no unit for the time step", exc, True))  # fmt: skip
    return rows


def rotated_2d_mha(path: Path):
    """A 4 x 5 mask in a 2D MetaImage rotated by 0.3 rad (its SimpleITK image)."""
    c, s = np.cos(0.3), np.sin(0.3)
    image = sitk.GetImageFromArray(np.arange(20, dtype=np.uint8).reshape(4, 5) % 2)
    image.SetDirection((c, -s, s, c))
    image.SetSpacing((0.5, 0.7))
    image.SetOrigin((10.0, 20.0))
    sitk.WriteImage(image, str(path))
    return image


def rotated_2d_row(folder: Path) -> Row:
    """A 2D rotated MetaImage mask saved as NIfTI, both read by SimpleITK."""
    src = folder / "sitk_rot2d_mask.mha"
    image = rotated_2d_mha(src)
    data, meta = _layer(src, labels=True)
    out = folder / "rot2d_mask.nii.gz"
    _writer.write_labels(str(out), data, meta)
    back = sitk.ReadImage(str(out))
    d3 = np.reshape(back.GetDirection(), (3, 3))
    got = Geometry(sitk.GetArrayFromImage(back).shape[1:], tuple(back.GetSpacing())[:2][::-1],
                   tuple(back.GetOrigin())[:2][::-1], tuple(d3[:2, :2].reshape(-1)))  # fmt: skip
    want = Geometry((4, 5), (0.7, 0.5), (20.0, 10.0), tuple(image.GetDirection()))
    return _same(f"mask on {src.name} as NIfTI", "SimpleITK (mask)", want, got)


def more_rows(folder: Path) -> list[Row]:
    """Every case of issue 24; files are written under ``folder``."""
    rows = enhanced_rows(folder)
    rows += big_endian_rows()
    rows.append(codes_00_itk_row(folder))
    rows.append(vector_nrrd_row(folder))
    rows += mosaic_row(folder)
    rows += four_d_rows(folder)
    rows.append(rotated_2d_row(folder))
    return rows
