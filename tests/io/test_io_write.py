"""Writers: geometry kept, labels lossless, writes atomic."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
import tifffile
from PIL import Image

from io_helpers import CT_ORIGIN, CT_SPACING, ct_volume, sitk_image
from napari_res101unet import _writer, io
from napari_res101unet._reader import read_layers

OBLIQUE = (0.0, 1.0, 0.0, -1.0, 0.0, 0.0, 0.0, 0.0, 1.0)  # a 90 degree in-plane rotation


def labels_like(shape=(4, 24, 20)):
    labels = np.zeros(shape, np.int32)  # napari's default Labels dtype
    labels[..., 5:15, 4:12] = 1
    labels[..., 16:20, 14:18] = 2
    return labels


@pytest.mark.parametrize("ext", [".nii.gz", ".nii", ".nrrd", ".mha"])
def test_labels_writer_restores_source_geometry(tmp_path, ext):
    src = tmp_path / "ct.nii.gz"
    sitk.WriteImage(sitk_image(ct_volume(), CT_SPACING, CT_ORIGIN, OBLIQUE), str(src))
    (_, meta, _), labels = read_layers(str(src))[0], labels_like()
    target = tmp_path / f"ct_labels{ext}"

    assert _writer.write_labels(str(target), labels, meta) == [str(target)]

    out = sitk.ReadImage(str(target))
    assert out.GetSpacing() == pytest.approx(CT_SPACING)
    assert out.GetOrigin() == pytest.approx(CT_ORIGIN)
    assert out.GetDirection() == pytest.approx(OBLIQUE)
    assert out.GetPixelIDValue() == sitk.sitkUInt8  # smallest lossless type
    np.testing.assert_array_equal(sitk.GetArrayFromImage(out), labels)


def test_labels_writer_uses_scale_and_translate_of_the_layer(tmp_path):
    meta = {"scale": (3.0, 0.5, 0.25), "translate": (10.0, -5.0, 2.0), "metadata": {}}
    _writer.write_labels(str(tmp_path / "m.nii.gz"), labels_like(), meta)
    out = sitk.ReadImage(str(tmp_path / "m.nii.gz"))
    assert out.GetSpacing() == pytest.approx((0.25, 0.5, 3.0))
    assert out.GetOrigin() == pytest.approx((2.0, -5.0, 10.0))


def test_png_labels_are_lossless_uint8_and_uint16(tmp_path):
    small = labels_like((24, 20))
    big = small.astype(np.int32) * 300  # needs 16 bits
    io.write_labels(tmp_path / "small.png", small)
    io.write_labels(tmp_path / "big.png", big)
    with Image.open(tmp_path / "small.png") as im:
        assert np.asarray(im).dtype == np.uint8
        np.testing.assert_array_equal(np.asarray(im), small)
    with Image.open(tmp_path / "big.png") as im:
        np.testing.assert_array_equal(np.asarray(im).astype(np.int32), big)
    np.testing.assert_array_equal(read_layers(str(tmp_path / "big.png"))[0][0], big)


def test_png_refuses_volumes_and_values_it_cannot_hold(tmp_path):
    with pytest.raises(ValueError, match="one 2D image"):
        io.write_labels(tmp_path / "vol.png", labels_like())
    with pytest.raises(ValueError, match=r"values up to 70,000 .* do not fit a PNG .*\.tif"):
        io.write_labels(tmp_path / "huge.png", np.array([[0, 70000]]))
    with pytest.raises(ValueError, match="labels are written as"):
        io.write_labels(tmp_path / "m.jpg", labels_like((24, 20)))
    assert not list(tmp_path.iterdir())


def test_png_takes_uint32_objects_that_fit_16_bits(tmp_path):
    """Objects come as uint32 from some tools (and from the stitched whole-slide path):
    those under 65,536 are written exactly, as uint16."""
    objects = np.zeros((20, 30), np.uint32)
    objects[2:6, 2:6], objects[10:14, 10:20] = 3, 65_535
    io.write_labels(tmp_path / "objects.png", objects)
    with Image.open(tmp_path / "objects.png") as im:
        np.testing.assert_array_equal(np.asarray(im), objects)


def test_single_slice_labels_go_to_png(tmp_path):
    io.write_labels(tmp_path / "one.png", labels_like((1, 24, 20)))
    assert read_layers(str(tmp_path / "one.png"))[0][0].shape == (24, 20)


def test_tiff_labels_keep_spacing_and_unit_imagej_style(tmp_path):
    meta = {"scale": (2.0, 0.5, 0.25), "translate": (0, 0, 0), "metadata": {"unit": "µm"}}
    _writer.write_labels(str(tmp_path / "cells_labels.tif"), labels_like(), meta)
    with tifffile.TiffFile(tmp_path / "cells_labels.tif") as tif:
        assert tif.is_imagej and tif.imagej_metadata["unit"] == "micron"
        assert tif.series[0].dtype == np.uint8
    data, kwargs, kind = read_layers(str(tmp_path / "cells_labels.tif"))[0]
    assert kind == "labels"
    np.testing.assert_array_equal(data, labels_like())
    assert kwargs["scale"] == pytest.approx((2.0, 0.5, 0.25))


def test_image_writer_keeps_dtype_and_geometry(tmp_path):
    vol = ct_volume()
    meta = {"scale": CT_SPACING[::-1], "translate": CT_ORIGIN[::-1], "metadata": {}}
    for ext in (".mha", ".nrrd", ".tif", ".ome.tif"):
        target = tmp_path / f"ct{ext}"
        _writer.write_image(str(target), vol, meta)
        data, kwargs, kind = read_layers(str(target))[0]
        assert kind == "image" and data.dtype == np.int16, ext
        np.testing.assert_array_equal(data, vol)
        assert kwargs["scale"] == pytest.approx(CT_SPACING[::-1]), ext


def test_float_probabilities_with_class_axis_to_tiff(tmp_path):
    probs = np.random.default_rng(0).random((2, 3, 8, 8), dtype=np.float32)
    io.write_image(tmp_path / "p.tif", probs, spacing=(2.0, 0.5, 0.5))
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "p.tif"), probs)


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "liver_labels.nii.gz"
    io.write_labels(target, labels_like())
    before = target.read_bytes()

    def crash(path, *args, **kwargs):
        with open(path, "wb") as fh:
            fh.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr("napari_res101unet.io._nifti.write_nifti", crash)
    with pytest.raises(OSError, match="disk full"):
        io.write_labels(target, labels_like() * 0)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["liver_labels.nii.gz"]


def test_failed_tiff_write_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "m.tif"
    io.write_labels(target, labels_like())
    before = target.read_bytes()

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("tifffile.imwrite", interrupted)
    with pytest.raises(KeyboardInterrupt):
        io.write_labels(target, labels_like())
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.tif"]


def test_writer_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="cannot write '.jpg'"):
        io.write_image(tmp_path / "x.jpg", np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match=r"spacing \(1\.0, 1\.0, 1\.0, 1\.0\) has 4 values"):
        io.write_image(tmp_path / "x.nii", np.zeros((4, 4), np.uint8), spacing=(1, 1, 1, 1))
    with pytest.raises(ValueError, match="labels must be integers"):
        io.write_labels(tmp_path / "x.nii", np.zeros((4, 4), np.float32))
