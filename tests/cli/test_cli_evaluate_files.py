"""``evaluate --predictions DIR --masks DIR``: another tool's label files scored, and the
model mode's --objects/--surface."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile
from PIL import Image

from napari_res101unet.cli import main


@pytest.fixture
def stardist_output(tmp_path):
    """uint16 instance TIFFs named as StarDist's scripts save them, truth as 0/255 PNGs."""
    preds, masks = tmp_path / "stardist", tmp_path / "truth"
    preds.mkdir()
    masks.mkdir()
    yy, xx = np.mgrid[:48, :48]
    for i, centres in enumerate([[(12, 12), (34, 30)], [(20, 20)]]):
        truth = np.zeros((48, 48), np.uint16)
        for k, (cy, cx) in enumerate(centres, start=1):
            truth[(yy - cy) ** 2 + (xx - cx) ** 2 <= 36] = k
        pred = truth.copy() * 7  # other ids, same objects
        pred[0:3, 40:43] = 2  # a false positive
        tifffile.imwrite(preds / f"img{i}_labels.tif", pred)
        Image.fromarray(((truth > 0) * 255).astype(np.uint8)).save(masks / f"img{i}.png")
    return preds, masks


def test_scores_another_tools_label_files(stardist_output, tmp_path, capsys):
    preds, masks = stardist_output
    out = tmp_path / "scores.json"
    code = main(["evaluate", "--predictions", str(preds), "--masks", str(masks),
                 "--objects", "--surface", "--json", str(out)])  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "img0_labels.tif" in printed and "pooled" in printed and "HD95" in printed
    result = json.loads(out.read_text(encoding="utf-8"))
    # 3 true objects all found exactly, 2 specks: F1 = 6 / (6 + 2)
    assert result["object_f1"] == pytest.approx(6 / 8)
    assert (result["tp"], result["fp"], result["fn"]) == (3, 2, 0)
    assert result["matching"][0]["thresh"] == 0.5 and result["matching"][-1]["tp"] == 3
    assert result["objects_from"]["truth"] == "connected components (8-connectivity)"
    assert result["objects_from"]["prediction"] == "instance ids"
    assert [e["prediction"] for e in result["per_image"]] == ["img0_labels.tif", "img1_labels.tif"]
    assert result["per_image"][1]["n_true"] == 1
    assert result["spacing_unit"] == "pixel" and len(result["per_case"]) == 2
    assert {"hd95_mm", "assd_mm", "dice", "n_images"} <= set(result)


def test_partnerless_files_and_mixed_modes_are_one_line_errors(stardist_output, capsys):
    preds, masks = stardist_output
    (masks / "img1.png").unlink()
    code = main(["evaluate", "--predictions", str(preds), "--masks", str(masks)])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1
    assert "prediction img1_labels.tif has no mask" in err
    code = main(["evaluate", "--predictions", str(preds), "--masks", str(masks), "-m", "x"])
    assert code == 1 and "without -m/--images" in capsys.readouterr().err
    code = main(["evaluate", "--masks", str(masks)])
    assert code == 1 and "give -m MODEL --images DIR" in capsys.readouterr().err


@pytest.mark.slow
def test_model_mode_gains_objects_and_surface(stardist_output, tmp_path, capsys):
    _, masks = stardist_output
    images = tmp_path / "images"
    images.mkdir()
    for i in range(2):
        Image.fromarray(np.full((48, 48, 3), 90, np.uint8)).save(images / f"img{i}.png")
    out = tmp_path / "scores.json"
    code = main(["evaluate", "-m", "untrained", "--images", str(images), "--masks", str(masks),
                 "--objects", "--surface", "--device", "cpu", "--json", str(out)])  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "mean per image" in printed and "objects (GlaS" in printed
    result = json.loads(out.read_text(encoding="utf-8"))
    assert {"iou", "dice", "object_f1", "object_hausdorff", "hd95_mm", "per_case"} <= set(result)
    assert result["n_true"] == 3 and "object_f1" in result["per_image"][0]
    assert result["objects_from"]["prediction"].startswith("connected components")
