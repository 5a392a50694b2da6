"""Label maps open as Labels: by name, by content, binary 0/255 and JPEG masks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import tifffile
from PIL import Image

from napari_res101unet._reader import get_reader
from napari_res101unet.io import name_says_labels, read_image, stem
from napari_res101unet.io._content import as_labels, narrow_integers


def kind_of(path):
    (layer,) = get_reader(str(path))(str(path))
    return layer


@pytest.mark.parametrize(
    "name",
    [
        "liver_mask.png",
        "case_00001_seg.nii.gz",
        "img01_labels.tif",
        "cells_label.tif",
        "scan-gt.nrrd",
        "kidney.seg.nrrd",
        "segmentation-12.nii",
        "slice_anno.png",
        "mask2d.tif",
        "mask_0003.png",
        "labelsTr/liver_7.nii.gz",
        "masks/flipped_10001_103.jpg",
    ],
)
def test_label_names(name):
    path = Path("/data") / name
    assert name_says_labels(path, stem(path))


@pytest.mark.parametrize(
    "name",
    ["liver_ct.nii.gz", "label-free_cells.tif", "imagesTr/liver_7.nii.gz", "segmented_by_hand"],
)
def test_image_names(name):
    path = Path("/data") / name
    assert not name_says_labels(path, stem(path))


def test_named_instance_mask_with_many_labels_opens_as_labels(tmp_path):
    mask = np.arange(40 * 40, dtype=np.uint16).reshape(40, 40) % 300
    tifffile.imwrite(tmp_path / "nuclei_mask.tif", mask)
    data, _, kind = kind_of(tmp_path / "nuclei_mask.tif")
    assert kind == "labels" and data.dtype == np.uint16
    np.testing.assert_array_equal(data, mask)


def test_few_integer_values_open_as_labels_by_content(tmp_path):
    mask = np.zeros((3, 20, 20), np.uint8)
    mask[:, 5:10, 5:10], mask[:, 12:15, 2:6] = 1, 2
    sitk.WriteImage(sitk.GetImageFromArray(mask), str(tmp_path / "case7.nii.gz"))
    data, kwargs, kind = kind_of(tmp_path / "case7.nii.gz")
    assert kind == "labels"
    np.testing.assert_array_equal(data, mask)
    assert "contrast_limits" not in kwargs


def test_many_integer_values_open_as_image(tmp_path):
    img = np.random.default_rng(0).integers(0, 256, (20, 20)).astype(np.uint8)
    Image.fromarray(img).save(tmp_path / "photo.png")
    assert kind_of(tmp_path / "photo.png")[2] == "image"


def test_binary_0_255_png_mask_becomes_0_1(tmp_path):
    mask = np.zeros((20, 30), np.uint8)
    mask[4:12, 5:20] = 255
    Image.fromarray(mask).save(tmp_path / "anything.png")
    data, _, kind = kind_of(tmp_path / "anything.png")
    assert kind == "labels" and data.dtype == np.uint8
    np.testing.assert_array_equal(data, mask // 255)


def test_jpeg_mask_is_binarised_at_127(tmp_path):
    mask = np.zeros((64, 64), np.uint8)
    mask[10:40, 20:50] = 255
    rgb = np.stack([mask] * 3, -1)
    Image.fromarray(rgb).save(tmp_path / "slice_mask.jpg", quality=75)  # lossy edges
    Image.fromarray(rgb).save(tmp_path / "other.jpg", quality=75)
    for name in ("slice_mask.jpg", "other.jpg"):  # by name, then by content
        data, _, kind = kind_of(tmp_path / name)
        assert kind == "labels", name
        assert set(np.unique(data)) == {0, 1}
        assert np.mean(data == mask // 255) > 0.99


def test_rgb_named_mask_stays_an_image(tmp_path):
    colour = np.random.default_rng(0).integers(0, 256, (10, 10, 3)).astype(np.uint8)
    Image.fromarray(colour).save(tmp_path / "overlay_mask.png")
    _, kwargs, kind = kind_of(tmp_path / "overlay_mask.png")
    assert kind == "image" and kwargs["rgb"] is True
    with pytest.raises(ValueError, match="overlay_mask.png holds colour"):
        read_image(tmp_path / "overlay_mask.png", labels=True)


def test_float_label_map_named_seg_becomes_integers(tmp_path):
    seg = np.zeros((2, 8, 8), np.float32)
    seg[:, 2:5, 2:5] = 3.0
    sitk.WriteImage(sitk.GetImageFromArray(seg), str(tmp_path / "liver_seg.nii.gz"))
    data, _, kind = kind_of(tmp_path / "liver_seg.nii.gz")
    assert kind == "labels" and data.dtype == np.uint8
    np.testing.assert_array_equal(data, seg.astype(np.uint8))


def test_probability_map_named_seg_stays_image(tmp_path):
    prob = np.random.default_rng(0).random((2, 8, 8), dtype=np.float32)
    sitk.WriteImage(sitk.GetImageFromArray(prob), str(tmp_path / "liver_seg.nii.gz"))
    assert kind_of(tmp_path / "liver_seg.nii.gz")[2] == "image"


def test_palette_png_label_map_gives_indices(tmp_path):
    indices = np.zeros((16, 16), np.uint8)
    indices[2:8, 2:8], indices[9:14, 9:14] = 1, 15
    im = Image.fromarray(indices, mode="P")
    im.putpalette([0, 0, 0, 128, 0, 0] + [0, 128, 0] * 254)
    im.save(tmp_path / "voc_style.png")
    data, _, kind = kind_of(tmp_path / "voc_style.png")
    assert kind == "labels"
    np.testing.assert_array_equal(data, indices)


def test_labels_argument_forces_or_forbids(tmp_path):
    mask = np.zeros((10, 10), np.uint8)
    mask[2:5, 2:5] = 1
    Image.fromarray(mask).save(tmp_path / "m.png")
    assert read_image(tmp_path / "m.png").is_labels
    assert not read_image(tmp_path / "m.png", labels=False).is_labels
    img = np.random.default_rng(0).integers(0, 256, (10, 10)).astype(np.uint8)
    Image.fromarray(img).save(tmp_path / "i.png")
    assert read_image(tmp_path / "i.png", labels=True).is_labels


def test_as_labels_and_narrow_integers():
    assert as_labels(np.array([0.5, 1.0])) is None
    assert as_labels(np.array([True, False])).dtype == np.uint8
    np.testing.assert_array_equal(as_labels(np.array([0, 65535], np.uint16)), [0, 1])
    np.testing.assert_array_equal(as_labels(np.array([0, 255, 7], np.uint8)), [0, 255, 7])
    hu = np.array([-1024, 0, 3000], np.int32)
    assert narrow_integers(hu).dtype == np.int16
    assert narrow_integers(hu.astype(np.float64)).dtype == np.int16
    assert narrow_integers(np.array([0.5], np.float32)).dtype == np.float32
    assert narrow_integers(np.array([0, 60000], np.int32)).dtype == np.uint16
