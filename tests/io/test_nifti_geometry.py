"""NIfTI header rules as nibabel applies them: sform/qform, codes, shear, NIfTI-2, 4D, 2D,
scaling and NaN; masks written by the plugin are read back with nibabel."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from napari_res101unet import _writer
from napari_res101unet._reader import get_reader
from napari_res101unet.io import read_image, write_labels
from napari_res101unet.preprocess.normalize import resolve_mode

LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


def layer(path):
    data, kwargs, kind = get_reader(str(path))(str(path))[0]
    return data, kwargs, kind


def save_mask_like(path, out, shape=None):
    """What napari does: a Labels layer drawn on the image, saved by our writer."""
    data, kwargs, _ = layer(path)
    spatial = (shape or data.shape)[-3:]
    mask = np.zeros(spatial, np.uint8)
    mask[..., 1:3, 2:5] = 1
    meta = {k: kwargs[k] for k in ("scale", "translate", "metadata")}
    meta["scale"], meta["translate"] = meta["scale"][-3:], meta["translate"][-3:]
    _writer.write_labels(str(out), mask, meta)
    return nib.load(str(out)), mask


def ct_array(shape=(10, 12, 4)):
    rng = np.random.default_rng(0)
    vol = np.full(shape, -1000, np.int16)
    vol[2:-2, 2:-2] = rng.integers(-100, 300, (shape[0] - 4, shape[1] - 4, shape[2]))
    return vol


def test_sform_wins_over_a_disagreeing_qform_and_the_mask_keeps_both(tmp_path):
    qform = np.diag([0.8, 0.8, 2.5, 1.0])
    sform = qform.copy()
    sform[:3, 3] = (13.0, -4.0, 20.0)  # registered: 13 mm away from the scanner frame
    img = nib.Nifti1Image(ct_array(), qform)
    img.set_qform(qform, code=1)
    img.set_sform(sform, code=2)
    nib.save(img, tmp_path / "reg.nii.gz")

    image = read_image(tmp_path / "reg.nii.gz")
    ours = (LPS @ sform)[:3, 3][::-1]
    assert image.origin == pytest.approx(tuple(ours))
    assert any("sform and qform disagree" in n for n in image.metadata["notes"])

    back, _ = save_mask_like(tmp_path / "reg.nii.gz", tmp_path / "reg_mask.nii.gz")
    np.testing.assert_allclose(back.affine, nib.load(tmp_path / "reg.nii.gz").affine, atol=1e-5)
    assert int(back.header["sform_code"]) == 2 and int(back.header["qform_code"]) == 1
    np.testing.assert_allclose(back.get_qform(), qform, atol=1e-5)


def test_sheared_sform_only_file_is_read_and_written_back(tmp_path):
    affine = np.array([[1.0, 0.3, 0, -10], [0, 1.0, 0, 5], [0, 0, 2.0, 7], [0, 0, 0, 1]])
    img = nib.Nifti1Image(ct_array(), affine)
    img.set_qform(None, code=0)
    img.set_sform(affine, code=1)
    nib.save(img, tmp_path / "shear.nii.gz")

    data, kwargs, kind = layer(tmp_path / "shear.nii.gz")
    assert kind == "image" and data.shape == (4, 12, 10)
    back, _ = save_mask_like(tmp_path / "shear.nii.gz", tmp_path / "shear_mask.nii.gz")
    np.testing.assert_allclose(back.affine, affine, atol=1e-5)
    with pytest.raises(ValueError, match="not orthonormal.*NIfTI"):
        write_labels(tmp_path / "m.nrrd", np.zeros((4, 12, 10), np.uint8),
                     direction=kwargs["metadata"]["direction"])  # fmt: skip


def test_nifti2_is_read_like_nibabel(tmp_path):
    affine = np.diag([-0.9, 0.9, 3.0, 1.0])
    affine[:3, 3] = (40, -30, 12)
    nib.save(nib.Nifti2Image(ct_array(), affine), tmp_path / "two.nii")
    image = read_image(tmp_path / "two.nii")
    assert image.data.shape == (4, 12, 10)
    np.testing.assert_array_equal(image.data, ct_array().transpose(2, 1, 0))
    assert image.spacing == pytest.approx((3.0, 0.9, 0.9))
    assert image.origin == pytest.approx(tuple((LPS @ affine)[:3, 3][::-1]))
    assert image.metadata["nifti"]["version"] == 2


def test_4d_source_mask_keeps_its_orientation(tmp_path):
    affine = np.diag([-2.0, 2.0, 3.0, 1.0])  # LAS, as FSL writes fMRI
    affine[:3, 3] = (60, -80, -30)
    bold = np.random.default_rng(0).integers(0, 900, (10, 12, 4, 5)).astype(np.int16)
    nib.save(nib.Nifti1Image(bold, affine), tmp_path / "bold.nii.gz")

    image = read_image(tmp_path / "bold.nii.gz")
    assert image.data.shape == (5, 4, 12, 10) and len(image.direction) == 9

    back, mask = save_mask_like(tmp_path / "bold.nii.gz", tmp_path / "bold_mask.nii.gz")
    np.testing.assert_allclose(back.affine, affine, atol=1e-5)
    assert nib.aff2axcodes(back.affine) == ("L", "A", "S")
    np.testing.assert_array_equal(np.asarray(back.dataobj).transpose(2, 1, 0), mask)


def test_2d_nifti_keeps_its_slice_position_on_write(tmp_path):
    affine = np.diag([0.5, 0.5, 1.0, 1.0])
    affine[:3, 3] = (-20, 10, 42.0)
    nib.save(nib.Nifti1Image(ct_array((10, 12, 1))[..., 0], affine), tmp_path / "slice.nii")
    image = read_image(tmp_path / "slice.nii")
    assert image.data.shape == (1, 12, 10) and image.origin[0] == pytest.approx(42.0)
    back, _ = save_mask_like(tmp_path / "slice.nii", tmp_path / "slice_mask.nii")
    assert back.affine[2, 3] == pytest.approx(42.0)


def test_uint16_ct_with_intercept_and_float_ct_keep_the_hu_window(tmp_path):
    hu = ct_array()
    img = nib.Nifti1Image((hu + 1024).astype(np.uint16), np.eye(4))
    img.header.set_slope_inter(1.0, -1024.0)
    nib.save(img, tmp_path / "ct_u16.nii.gz")
    nib.save(nib.Nifti1Image(hu.astype(np.float32), np.eye(4)), tmp_path / "ct_f32.nii.gz")
    for name in ("ct_u16.nii.gz", "ct_f32.nii.gz"):
        data, kwargs, _ = layer(tmp_path / name)
        np.testing.assert_array_equal(data, hu.transpose(2, 1, 0))
        assert kwargs["contrast_limits"] == [-160, 240]
        assert resolve_mode({"mode": "auto"}, data.dtype, data.reshape(-1, 1)) == "window"


def test_nan_voxels_are_reported_not_zeroed(tmp_path):
    vol = np.random.default_rng(0).random((8, 8, 3)).astype(np.float32)
    vol[2, 3, 1] = vol[4, 4, 2] = np.nan
    nib.save(nib.Nifti1Image(vol, np.eye(4)), tmp_path / "pet.nii.gz")
    data, kwargs, _ = layer(tmp_path / "pet.nii.gz")
    assert np.isnan(data).sum() == 2
    assert kwargs["metadata"]["nan_voxels"] == 2
    assert any("NaN" in n for n in kwargs["metadata"]["notes"])


def test_rgb_nifti_written_by_itk_stays_rgb(tmp_path):
    import SimpleITK as sitk

    rgb = np.random.default_rng(0).integers(0, 255, (3, 5, 6, 3)).astype(np.uint8)
    sitk.WriteImage(sitk.GetImageFromArray(rgb, isVector=True), str(tmp_path / "rgb.nii.gz"))
    image = read_image(tmp_path / "rgb.nii.gz")
    assert image.rgb and image.data.shape == (3, 5, 6, 3)
    np.testing.assert_array_equal(image.data, rgb)


@pytest.mark.parametrize("name", ["seg.nii.gz", "seg.nii"])
def test_a_nifti_with_header_extensions_is_read(tmp_path, name):
    """TotalSegmentator writes its label table as a 13 kB XML extension after the header;
    the size check read the header from its first 540 bytes and failed on it."""
    labels = np.zeros((6, 5, 4), np.uint8)
    labels[1:4, 2:4, 1:3] = 5
    img = nib.Nifti1Image(labels, np.diag([3.0, 3.0, 3.0, 1.0]))
    table = b"<CaretExtension>" + b"<Label Key='5'>liver</Label>" * 500 + b"</CaretExtension>"
    img.header.extensions.append(nib.nifti1.Nifti1Extension(0, table))
    nib.save(img, str(tmp_path / name))
    assert len(nib.load(str(tmp_path / name)).header.extensions) == 1
    read = read_image(tmp_path / name, labels=True)
    np.testing.assert_array_equal(read.data, labels.transpose(2, 1, 0))
    assert read.spacing == (3.0, 3.0, 3.0)
