"""score_files: label files of any tool against masks, paired by name, read with their
spacing; every problem listed before anything is scored."""

from __future__ import annotations

import math

import numpy as np
import pytest
import tifffile
from PIL import Image

from napari_res101unet.evaluation.files import pair_label_files, score_files
from napari_res101unet.io import write_labels


def _truth(shape=(32, 40)) -> np.ndarray:
    t = np.zeros(shape, np.uint16)
    t[2:10, 2:10] = 1
    t[2:10, 10:18] = 2  # touching object 1: one component in a binary mask
    t[20:28, 25:35] = 3
    return t


@pytest.fixture
def stardist_like(tmp_path):
    """Predictions as StarDist saves them (uint16 `<stem>_labels.tif`), masks as PNG 0/255."""
    preds, masks = tmp_path / "pred", tmp_path / "masks"
    preds.mkdir()
    masks.mkdir()
    truth = _truth()
    tifffile.imwrite(preds / "a_labels.tif", truth)  # perfect instances
    split = truth.copy()
    split[split == 3] = 0
    tifffile.imwrite(preds / "b_labels.tif", split)  # object 3 missed
    for name in ("a", "b"):
        Image.fromarray(((truth > 0) * 255).astype(np.uint8)).save(masks / f"{name}.png")
    return preds, masks


def test_pairs_by_name_in_either_direction(tmp_path):
    preds, masks = tmp_path / "p", tmp_path / "m"
    preds.mkdir()
    masks.mkdir()
    image = np.zeros((4, 4), np.uint8)
    for name in ("x_labels.tif", "w.tif"):
        tifffile.imwrite(preds / name, image)
    for name in ("y_cp_masks.png", "z.png"):
        Image.fromarray(image).save(preds / name)
    for name in ("x.png", "y_mask.png", "z_gt.png", "w_seg.png"):
        Image.fromarray(image).save(masks / name)
    pairs = {(p.name, m.name) for p, m in pair_label_files(preds, masks)}
    assert pairs == {
        ("x_labels.tif", "x.png"),
        ("y_cp_masks.png", "y_mask.png"),
        ("z.png", "z_gt.png"),
        ("w.tif", "w_seg.png"),
    }


def test_files_without_a_partner_are_listed_together(stardist_like):
    preds, masks = stardist_like
    (masks / "c.png").write_bytes((masks / "a.png").read_bytes())
    tifffile.imwrite(preds / "d_labels.tif", _truth())
    with pytest.raises(ValueError, match=r"2 label files without a partner") as info:
        score_files(preds, masks)
    assert "mask c.png has no prediction" in str(info.value)
    assert "prediction d_labels.tif has no mask" in str(info.value)
    with pytest.raises(ValueError, match="is not a folder"):
        score_files(preds / "nope", masks)


def test_shapes_that_differ_are_listed_before_scoring(stardist_like):
    preds, masks = stardist_like
    tifffile.imwrite(preds / "a_labels.tif", np.zeros((16, 16), np.uint16))
    tifffile.imwrite(preds / "b_labels.tif", np.zeros((8, 16), np.uint16))
    with pytest.raises(ValueError, match=r"2 label file pairs differ in shape") as info:
        score_files(preds, masks)
    assert "a_labels.tif (16, 16) vs a.png (32, 40)" in str(info.value)


def test_scores_and_keys(stardist_like):
    preds, masks = stardist_like
    result = score_files(preds, masks)
    assert result["n_images"] == 2
    # the binary masks hold 2 components (objects 1 and 2 touch): the perfect instance
    # prediction splits the first one in two halves, each covering under 50 % of it
    a, b = result["per_image"]
    assert (a["prediction"], a["mask"]) == ("a_labels.tif", "a.png")
    assert (a["n_pred"], a["n_true"], a["tp"]) == (3, 2, 1)
    assert (b["n_pred"], b["n_true"], b["tp"]) == (2, 2, 0)
    assert result["tp"] == 1 and result["fp"] == 4 and result["fn"] == 3
    assert result["object_f1"] == pytest.approx(2 / (2 + 4 + 3))
    assert result["objects_from"] == {
        "prediction": "instance ids",
        "truth": "connected components (8-connectivity)",
    }
    assert len(result["matching"]) == 10 and result["matching"][0]["thresh"] == 0.5
    assert {"object_dice", "object_hausdorff", "matching"} <= set(a)
    assert "hd95_mm" not in result


def test_truth_without_objects_scores_defined(tmp_path):
    preds, masks = tmp_path / "p", tmp_path / "m"
    preds.mkdir()
    masks.mkdir()
    tifffile.imwrite(preds / "e.tif", _truth())
    Image.fromarray(np.zeros((32, 40), np.uint8)).save(masks / "e.png")
    result = score_files(preds, masks, surface=True)
    assert result["object_f1"] == 0.0 and result["object_dice"] == 0.0
    assert math.isfinite(result["object_hausdorff"]) and math.isfinite(result["hd95_mm"])
    assert result["per_case"][0]["empty"] == "truth" and result["spacing_unit"] == "pixel"


def test_surface_in_mm_from_the_files(tmp_path):
    preds, masks = tmp_path / "p", tmp_path / "m"
    preds.mkdir()
    masks.mkdir()
    truth = np.zeros((6, 20, 20), np.uint8)
    truth[2:4, 5:15, 5:15] = 1
    pred = np.roll(truth, 2, axis=2)  # 2 voxels along X: 1.0 mm at 0.5 mm
    write_labels(masks / "case1.nii.gz", truth, spacing=(3.0, 0.5, 0.5))
    write_labels(preds / "case1_seg.nii.gz", pred, spacing=(3.0, 0.5, 0.5))
    result = score_files(preds, masks, objects=False, surface=True)
    case = result["per_case"][0]
    assert result["spacing_unit"] == "mm" and case["spacing"] == pytest.approx([3.0, 0.5, 0.5])
    assert result["hd95_mm"] == pytest.approx(1.0)
    assert result["dice"] == pytest.approx(2 * 160 / 400)
    assert "object_f1" not in result

    write_labels(preds / "case1_seg.nii.gz", pred, spacing=(3.0, 0.7, 0.7))
    with pytest.raises(ValueError, match="pixel size"):
        score_files(preds, masks, objects=False, surface=True)
    with pytest.raises(ValueError, match="nothing to score"):
        score_files(preds, masks, objects=False, surface=False)
