from __future__ import annotations

import numpy as np
import pytest

from napari_res101unet.evaluation.pixel import (
    confusion_matrix,
    dice,
    iou,
    pixel_accuracy,
    segmentation_scores,
)


def test_binary_scores_by_hand():
    target = np.zeros((4, 4), int)
    target[:2, :2] = 1  # 4 foreground pixels
    pred = np.zeros((4, 4), int)
    pred[:2, :3] = 1  # 6 predicted, 4 correct
    assert iou(pred, target) == pytest.approx(4 / 6)
    assert dice(pred, target) == pytest.approx(2 * 4 / (6 + 4))
    assert pixel_accuracy(pred, target) == pytest.approx(14 / 16)


def test_multiclass_mean_over_present_foreground_classes():
    target = np.array([[0, 1, 1, 2]])
    pred = np.array([[0, 1, 2, 2]])
    s = segmentation_scores(pred, target, n_classes=4)
    assert s["per_class_iou"][1] == pytest.approx(1 / 2)
    assert s["per_class_iou"][2] == pytest.approx(1 / 2)
    assert s["per_class_iou"][3] == 1.0  # absent from both
    assert s["iou"] == pytest.approx(0.5)  # class 3 is not averaged in
    assert s["accuracy"] == pytest.approx(3 / 4)


def test_empty_target_and_prediction_is_perfect():
    z = np.zeros((5, 5), int)
    assert iou(z, z) == 1.0 and dice(z, z) == 1.0
    one = z.copy()
    one[0, 0] = 1
    assert iou(one, z) == 0.0


def test_ignore_index_is_left_out():
    target = np.array([[1, 1, 255, 255]])
    pred = np.array([[1, 1, 0, 1]])
    assert iou(pred, target, n_classes=2, ignore_index=255) == 1.0
    assert pixel_accuracy(pred, target, ignore_index=255) == 1.0


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match=r"prediction shape \(2, 2\) != target shape \(3, 3\)"):
        iou(np.zeros((2, 2)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="target has label 5 outside 0..1"):
        confusion_matrix(np.zeros(3, int), np.array([0, 1, 5]), 2)
