"""The demo's result as napari layers (the window ``demo`` opens at its end; Qt, Xvfb)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_res101unet.cli.demo_view import add_result_layers, write_result

pytestmark = pytest.mark.qt


def test_the_demo_result_opens_as_image_truth_and_prediction(make_napari_viewer, tmp_path):
    images = np.random.default_rng(0).integers(0, 255, (2, 64, 64)).astype(np.uint8)
    truth = np.zeros((2, 64, 64), np.uint8)
    truth[:, 10:40, 10:40] = 1
    predicted = np.roll(truth, 3, axis=2)
    write_result(tmp_path, images, truth, predicted)
    viewer = make_napari_viewer()
    image, outline, labels = add_result_layers(viewer, tmp_path, "liver-demo")
    assert [layer.name for layer in viewer.layers] == [
        "held-out CT", "truth (liver mask)", "prediction (liver-demo)",
    ]  # fmt: skip
    assert [layer._type_string for layer in viewer.layers] == ["image", "labels", "labels"]
    np.testing.assert_array_equal(image.data, images)
    np.testing.assert_array_equal(outline.data, truth)
    np.testing.assert_array_equal(labels.data, predicted)
    assert outline.contour == 2  # the truth is outlined, the prediction filled
