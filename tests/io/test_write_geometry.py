"""Masks that land elsewhere than their image in other tools (issue 24, items 4, 5, 6, 18):
4D labels (spatial direction and TR), NIfTI with sform/qform codes 0/0, Slicer's vector
``.seg.nrrd``, a 2D rotated MetaImage saved as NIfTI.

"Right" means equal to the peer library: the world coordinates (SimpleITK's
``TransformIndexToPhysicalPoint``, nibabel's affine) of the mask's corners are those of
the image's corners.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
from conformance_more import rotated_2d_mha, slicer_overlapping_seg

from napari_res101unet import _writer
from napari_res101unet._reader import layer_data
from napari_res101unet.io import read_image, write_image

_C, _S = np.cos(0.3), np.sin(0.3)


def _layer(path: Path):
    data, kwargs, _ = layer_data(read_image(path, labels=False))
    meta = {k: kwargs[k] for k in ("scale", "translate", "metadata")}
    return data, meta


def _corners(img) -> np.ndarray:
    """SimpleITK world coordinates of an image's spatial corners (first 3 axes)."""
    size = img.GetSize()[:3]
    points = []
    for corner in itertools.product(*[(0, n - 1) for n in size]):
        index = [*corner, *[0] * (img.GetDimension() - len(size))]
        points.append(img.TransformIndexToPhysicalPoint([int(i) for i in index])[:3])
    return np.asarray(points)


def _oblique_4d(path: Path, tr: float = 2.5, unit: str = "sec") -> Path:
    affine = np.array([[2.0 * _C, -1.8 * _S, 0, -40], [2.0 * _S, 1.8 * _C, 0, 12],
                       [0, 0, 3.0, 25.0], [0, 0, 0, 1]])  # fmt: skip
    vol = np.random.default_rng(0).integers(0, 500, (10, 9, 4, 3)).astype(np.int16)
    img = nib.Nifti1Image(vol, affine)
    img.header.set_zooms((2.0, 1.8, 3.0, tr))
    img.header.set_xyzt_units("mm", unit)
    nib.save(img, path)
    return path


def test_4d_labels_keep_direction_and_time_step_in_nifti(tmp_path):
    src = _oblique_4d(tmp_path / "bold.nii.gz", tr=2500.0, unit="msec")
    data, meta = _layer(src)
    assert data.shape == (3, 4, 9, 10)
    mask = (data > 250).astype(np.uint8)
    out = tmp_path / "bold_mask.nii.gz"
    _writer.write_labels(str(out), mask, meta)
    back, source = nib.load(out), nib.load(src)
    assert np.allclose(back.affine, source.affine, atol=1e-4)
    assert back.header.get_zooms()[3] == pytest.approx(2500.0)
    assert back.header.get_xyzt_units() == source.header.get_xyzt_units() == ("mm", "msec")
    assert np.allclose(_corners(sitk.ReadImage(str(out))), _corners(sitk.ReadImage(str(src))))
    assert np.array_equal(np.asanyarray(back.dataobj).T, mask)


@pytest.mark.parametrize("ext", [".nrrd", ".mha"])
def test_4d_labels_with_a_time_step_are_refused_where_the_format_cannot_hold_it(tmp_path, ext):
    data, meta = _layer(_oblique_4d(tmp_path / "bold.nii.gz"))
    out = tmp_path / f"bold_mask{ext}"
    with pytest.raises(ValueError, match=rf"bold_mask\{ext}.*time step.*\.nii\.gz"):
        _writer.write_labels(str(out), (data > 250).astype(np.uint8), meta)
    assert not out.exists()


@pytest.mark.parametrize("ext", [".nrrd", ".mha"])
def test_leading_axes_without_a_step_keep_the_spatial_direction(tmp_path, ext):
    src = tmp_path / "oblique.nii.gz"
    image = sitk.GetImageFromArray(np.zeros((4, 6, 5), np.int16))
    image.SetDirection((_C, -_S, 0, _S, _C, 0, 0, 0, 1))
    image.SetSpacing((0.7, 0.9, 2.5))
    image.SetOrigin((-10.0, 20.0, 30.0))
    sitk.WriteImage(image, str(src))
    ours = read_image(src)
    probs = np.zeros((2, 4, 6, 5), np.float32)  # (K, Z, Y, X): class probabilities
    out = tmp_path / f"probs{ext}"
    write_image(out, probs, spacing=ours.spacing, origin=ours.origin, direction=ours.direction)
    back = sitk.ReadImage(str(out))
    assert back.GetDimension() == 4
    assert np.allclose(_corners(back), _corners(image), atol=1e-4)


def _codes_00(path: Path) -> Path:
    vol = np.random.default_rng(1).integers(0, 900, (6, 5, 4)).astype(np.int16)
    img = nib.Nifti1Image(vol, np.diag([2.0, 3.0, 4.0, 1.0]))
    img.set_sform(None, code=0)
    img.set_qform(None, code=0)
    nib.save(img, path)
    return path


def test_a_mask_on_a_nifti_with_codes_0_0_lies_where_the_image_does_in_itk_and_nibabel(
    tmp_path,
):
    src = _codes_00(tmp_path / "plain.nii.gz")
    data, meta = _layer(src)
    out = tmp_path / "plain_mask.nii.gz"
    _writer.write_labels(str(out), (data > 400).astype(np.uint8), meta)
    back = nib.load(out)
    assert np.allclose(back.affine, nib.load(src).affine)  # nibabel: the same placement
    assert int(back.header["sform_code"]) == int(back.header["qform_code"]) == 0
    assert np.allclose(_corners(sitk.ReadImage(str(out))), _corners(sitk.ReadImage(str(src))))


def test_a_moved_mask_on_a_codes_0_0_image_keeps_explicit_codes(tmp_path):
    src = _codes_00(tmp_path / "plain.nii.gz")
    data, meta = _layer(src)
    meta["translate"] = tuple(t + 5.0 for t in meta["translate"])  # not the base affine
    out = tmp_path / "moved_mask.nii.gz"
    _writer.write_labels(str(out), (data > 400).astype(np.uint8), meta)
    back = nib.load(out)
    assert int(back.header["sform_code"]) >= 1
    assert np.allclose(back.affine[:3, 3], nib.load(src).affine[:3, 3] + [-5, -5, 5])


def test_a_2d_rotated_metaimage_mask_saves_as_nifti_in_place(tmp_path):
    src = tmp_path / "rot2d_mask.mha"
    image = rotated_2d_mha(src)
    data, kwargs, kind = layer_data(read_image(src))
    assert kind == "labels"
    out = tmp_path / "rot2d_out.nii.gz"
    meta = {k: kwargs[k] for k in ("scale", "translate", "metadata")}
    _writer.write_labels(str(out), data, meta)
    back = sitk.ReadImage(str(out))
    corners = [(0, 0), (4, 0), (0, 3), (4, 3)]
    want = [image.TransformIndexToPhysicalPoint(c) for c in corners]
    got = [back.TransformIndexToPhysicalPoint((*c, 0))[:2] for c in corners]
    assert np.allclose(got, want)
    assert np.array_equal(np.asanyarray(nib.load(out).dataobj)[..., 0].T, data.reshape(4, 5))


def test_a_slicer_vector_seg_nrrd_opens_with_the_layer_axis_first_and_right_scales(tmp_path):
    path, layers = slicer_overlapping_seg(tmp_path / "overlap.seg.nrrd")
    peer = sitk.ReadImage(str(path))
    assert peer.GetNumberOfComponentsPerPixel() == 2
    image = read_image(path)
    assert image.is_labels and np.array_equal(image.data, layers)
    assert image.spacing == (1.0, *tuple(peer.GetSpacing())[::-1])
    assert image.origin == (0.0, *tuple(peer.GetOrigin())[::-1])
    assert tuple(image.direction) == tuple(peer.GetDirection())
    data, kwargs, kind = layer_data(image)
    assert kind == "labels" and len(kwargs["scale"]) == data.ndim == 4
    assert tuple(kwargs["scale"])[1:] == (2.5, 0.9, 0.7)
    segments = image.metadata["segments"]
    assert segments == {"liver": {"layer": 0, "value": 1}, "tumour": {"layer": 1, "value": 1}}
