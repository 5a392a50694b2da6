"""``napari-res101unet train`` and ``evaluate`` on tiny PNG/JPEG folders."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from napari_res101unet.cli import main
from napari_res101unet.io.folders import read_mask, read_pairs


def _disk_pair(seed: int, size: int = 64):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    cy, cx = rng.integers(16, size - 16, 2)
    mask = ((yy - cy) ** 2 + (xx - cx) ** 2 < 100).astype(np.uint8)
    gray = (rng.normal(60, 15, (size, size)) + 120 * mask).clip(0, 255).astype(np.uint8)
    return np.stack([gray, gray // 2, gray], axis=-1), mask


@pytest.fixture
def folders(tmp_path):
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    for i in range(3):
        rgb, mask = _disk_pair(i)
        Image.fromarray(rgb).save(images / f"case_{i}.png")
        Image.fromarray(mask * 255).save(masks / f"case_{i}_mask.png")
    return images, masks


def test_help_lists_the_options(capsys):
    for command, expected in (("train", "--freeze-encoder-epochs"), ("evaluate", "--json")):
        with pytest.raises(SystemExit) as exc:
            main([command, "--help"])
        assert exc.value.code == 0
        out = capsys.readouterr().out
        assert expected in out and "--images" in out and "--masks" in out


def test_masks_are_binarised_by_their_kind(tmp_path):
    mask = np.zeros((16, 16), np.uint8)
    mask[4:12, 4:12] = 255
    Image.fromarray(mask).save(tmp_path / "m.png")
    Image.fromarray(np.stack([mask] * 3, -1)).save(tmp_path / "m.jpg", quality=70)
    Image.fromarray((mask > 0).astype(np.uint8) * 2).save(tmp_path / "c.png")
    assert np.array_equal(read_mask(tmp_path / "m.png"), mask > 0)
    assert np.array_equal(read_mask(tmp_path / "m.jpg"), mask > 0)
    assert read_mask(tmp_path / "c.png").max() == 2  # class indices stay
    assert read_mask(tmp_path / "c.png", binary=True).max() == 1


def test_pairs_are_matched_by_stem_and_missing_masks_are_named(folders):
    images, masks = folders
    pairs, names = read_pairs(images, masks)
    assert names == ["case_0.png", "case_1.png", "case_2.png"]
    assert pairs[0][0].shape == (64, 64, 3) and set(np.unique(pairs[0][1])) == {0, 1}
    (masks / "case_2_mask.png").unlink()
    with pytest.raises(ValueError, match="1 images have no mask.*case_2.png"):
        read_pairs(images, masks)


def test_train_then_evaluate(folders, tmp_path, capsys):
    images, masks = folders
    out = tmp_path / "model"
    code = main(
        ["train", "--images", str(images), "--masks", str(masks), "-o", str(out),
         "--epochs", "1", "--patch-size", "64", "--batch-size", "2", "--steps-per-epoch", "2",
         "--device", "cpu"]
    )  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "epoch 1/1  loss" in printed and "val IoU" in printed
    assert (tmp_path / "model.safetensors").is_file()
    assert (tmp_path / "model.last.safetensors").is_file()

    scores = tmp_path / "scores.json"
    code = main(
        ["evaluate", "-m", str(tmp_path / "model.safetensors"), "--images", str(images),
         "--masks", str(masks), "--json", str(scores), "--device", "cpu"]
    )  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "case_1.png" in printed and "mean per image" in printed
    result = json.loads(scores.read_text(encoding="utf-8"))
    assert [e["name"] for e in result["per_image"]] == ["case_0.png", "case_1.png", "case_2.png"]
    assert 0.0 <= result["iou"] <= 1.0 and result["model"].endswith("model.safetensors")


def test_errors_print_one_line_and_exit_1(folders, tmp_path, capsys):
    images, masks = folders
    code = main(
        ["train", "--images", str(images), "--masks", str(masks), "-o", str(tmp_path / "m"),
         "--patch-size", "100"]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("error: patch_size must be a multiple of 32") and err.count("\n") == 1
    code = main(["evaluate", "-m", "untrained", "--images", str(tmp_path / "nope"),
                 "--masks", str(masks)])  # fmt: skip
    assert code == 1 and "is not a folder" in capsys.readouterr().err


def test_train_takes_sparse_strokes(tmp_path, capsys):
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    rgb, mask = _disk_pair(5)
    strokes = np.zeros_like(mask)
    strokes[:5] = 1
    strokes[mask == 1] = 2
    Image.fromarray(rgb).save(images / "a.png")
    Image.fromarray(strokes).save(masks / "a.png")
    code = main(
        ["train", "--images", str(images), "--masks", str(masks), "-o", str(tmp_path / "s"),
         "--sparse", "--epochs", "1", "--patch-size", "64", "--batch-size", "2",
         "--steps-per-epoch", "2", "--val-fraction", "0", "--device", "cpu"]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    from napari_res101unet.checkpoint import read_header

    settings = read_header(tmp_path / "s.safetensors")["spec"]["training"]["settings"]
    assert settings["sparse"] is True and settings["classes"] == 2


def test_train_instances_records_the_head_and_refuses_data_left_on_disk(folders, tmp_path, capsys):
    from napari_res101unet.checkpoint import read_header

    images, masks = folders
    tiny = ["--epochs", "1", "--patch-size", "64", "--batch-size", "2",
            "--steps-per-epoch", "2", "--val-fraction", "0", "--device", "cpu"]  # fmt: skip
    out = tmp_path / "objects"
    code = main(["train", "--images", str(images), "--masks", str(masks), "-o", str(out),
                 "--instances", *tiny])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    spec = read_header(tmp_path / "objects.safetensors")["spec"]
    assert spec["instance_head"] == "distance"  # the default head
    assert spec["class_names"][:2] == ["background", "distance 1/5"]
    code = main(["train", "--images", str(images), "--masks", str(masks), "-o",
                 str(tmp_path / "lazy"), "--instances", "--from-disk", *tiny])  # fmt: skip
    assert code == 1 and "needs the labels of pairs in memory" in capsys.readouterr().err
