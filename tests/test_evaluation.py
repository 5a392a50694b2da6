"""evaluate() on hand-made arrays whose scores are known exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_res101unet import ModelSpec, evaluate


class Oracle(torch.nn.Module):
    """Predicts the class whose index is the (un-normalised) image value."""

    def __init__(self, classes: int = 2) -> None:
        super().__init__()
        self.classes = classes
        self.spec = ModelSpec(in_channels=1, classes=classes, normalization={"mode": "none"})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        values = torch.arange(self.classes, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        return -10.0 * (x - values) ** 2


def _rows(rows, shape=(10, 10)) -> np.ndarray:
    out = np.zeros(shape, np.uint8)
    out[rows] = 1
    return out


def test_binary_scores_pooled_and_per_image():
    pred = _rows(np.s_[0:5])  # 50 pixels
    target = _rows(np.s_[2:7])  # 50 pixels, 30 shared -> IoU 30/70, Dice 60/100
    perfect = _rows(np.s_[3:4])
    result = evaluate(Oracle(), [(pred, target), (perfect, perfect)], device="cpu")
    first, second = result["per_image"]
    assert first["iou"] == pytest.approx(3 / 7) and first["dice"] == pytest.approx(0.6)
    assert first["accuracy"] == pytest.approx(0.6)
    assert second["iou"] == 1.0 and second["pixels"] == 100
    assert result["iou"] == pytest.approx(40 / 80)  # pooled: tp 30+10, union 70+10
    assert result["dice"] == pytest.approx(80 / 120)
    assert result["accuracy"] == pytest.approx(160 / 200)
    assert result["mean_iou"] == pytest.approx((3 / 7 + 1) / 2)
    assert result["confusion_matrix"] == [[120, 20], [20, 40]]
    assert result["n_images"] == 2 and result["class_names"] == ["background", "foreground"]


def test_multiclass_stack_with_ignored_pixels():
    pred = np.zeros((2, 6, 6), np.uint8)
    pred[0, :3] = 1
    pred[1, :2] = 2
    target = pred.copy()
    target[1, :2, :3] = 1  # 6 class-2 pixels labelled 1
    target[0, 5] = 255  # unlabelled row, predicted 0
    result = evaluate(Oracle(3), [(pred, target)], device="cpu", ignore_index=255)
    per_class = {c["class"]: c for c in result["per_class"]}
    assert per_class[1]["iou"] == pytest.approx(18 / 24)
    assert per_class[2]["iou"] == pytest.approx(6 / 12)
    assert result["iou"] == pytest.approx((18 / 24 + 6 / 12) / 2)
    assert sum(map(sum, result["confusion_matrix"])) == 72 - 6


def test_errors_name_the_pair():
    image = np.zeros((8, 8), np.uint8)
    with pytest.raises(ValueError, match=r"pairs\[1\]: image shape \(8, 8\) does not match"):
        evaluate(Oracle(), [(image, image), (image, image[:4])], device="cpu")
    with pytest.raises(ValueError, match=r"pairs\[0\] has label 3, beyond classes=2"):
        evaluate(Oracle(), [(image, image + 3)], device="cpu")


def test_objects_and_surface_of_the_model_labels():
    from napari_res101unet.evaluation.surface import surface_scores

    pred = np.zeros((10, 10), np.uint8)
    pred[1:4, 1:4] = 1
    pred[6:9, 6:9] = 1
    pred[0, 9] = 1  # in the unlabelled row: not a false positive
    target = np.zeros_like(pred)
    target[1:4, 1:4] = 1
    target[6:9, 7:10] = 1  # shifted one column: 6 of 9 pixels covered
    target[0] = 255
    result = evaluate(
        Oracle(), [(pred, target)], device="cpu", ignore_index=255,
        objects=True, surface=True, spacings=[(2.0, 0.5)],
    )  # fmt: skip
    assert (result["tp"], result["fp"], result["fn"]) == (2, 0, 0)
    assert result["object_f1"] == 1.0 and result["object_hausdorff"] == pytest.approx(0.5)
    kept = pred.copy()
    kept[0] = 0
    expected = surface_scores(kept, target == 1, (2.0, 0.5))
    assert result["hd95_mm"] == pytest.approx(expected["hd95"])
    assert result["per_case"][0]["assd_mm"] == pytest.approx(expected["assd"])
    assert result["spacing_unit"] == "mm" and result["per_image"][0]["n_true"] == 2
    assert result["dice"] == pytest.approx(2 * 15 / 36)  # the pooled pixel Dice stays
    with pytest.raises(ValueError, match="spacings has 2 entries for 1 pairs"):
        evaluate(Oracle(), [(pred, pred)], device="cpu", surface=True, spacings=[None, None])
