"""The pixel size through the napari API (layer scale, widget field) and the CLI."""

from __future__ import annotations

import numpy as np
import pytest

from napari_res101unet.cli import main
from napari_res101unet.cli.common import pixel_spacing
from napari_res101unet.io import read_image, write_image

napari = pytest.importorskip("napari")
from napari.components import ViewerModel  # noqa: E402

from napari_res101unet import viewer as api  # noqa: E402
from napari_res101unet.viewer.layers import known_spacing  # noqa: E402


def test_layer_spacing_is_known_from_the_reader_unit_or_a_scale():
    viewer = ViewerModel()
    png = viewer.add_image(np.zeros((32, 32), np.uint8), name="png")
    ct = viewer.add_image(
        np.zeros((3, 32, 32), np.int16), scale=(2.0, 0.7, 0.7), metadata={"unit": "mm"}
    )
    one = viewer.add_image(np.zeros((32, 32), np.uint8), metadata={"unit": "mm"})
    assert known_spacing(png) is None
    assert known_spacing(ct) == [0.7, 0.7] and known_spacing(one) == [1.0, 1.0]
    request = api.segment_request(viewer, png, "untrained", pixel_size=0.5)
    options = request.payload()["options"]
    assert options["pixel_size"] == 0.5 and options["spacing"] is None
    assert api.segment_request(viewer, ct, "untrained").payload()["options"]["spacing"] == [
        0.7,
        0.7,
    ]
    assert api.segment_request(viewer, png, "untrained", pixel_size=0).pixel_size is None
    for bad in (float("nan"), -1.0):
        with pytest.raises(ValueError, match="pixel_size"):
            api.segment_request(viewer, png, "untrained", pixel_size=bad)


def test_train_request_sends_the_spacing_of_each_pair_or_none():
    viewer = ViewerModel()
    labels = np.zeros((32, 32), np.uint8)
    labels[8:24, 8:24] = 1
    viewer.add_image(np.zeros((32, 32), np.uint8), name="png")
    viewer.add_image(np.zeros((32, 32), np.uint8), name="tif", scale=(0.5, 0.5))
    viewer.add_labels(labels, name="mask")
    request = api.train_request(viewer, [("png", "mask"), ("tif", "mask")])
    assert request.options["spacing"] == [None, [0.5, 0.5]]


def test_cli_pixel_size_checks_and_file_spacing(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_image(tmp_path / "x.png", np.zeros((40, 40), np.uint8))
    write_image(tmp_path / "x.nii.gz", np.zeros((2, 40, 40), np.int16), spacing=(3.0, 0.8, 0.8))
    assert read_image(tmp_path / "x.png").known_spacing is None
    assert read_image(tmp_path / "x.nii.gz").known_spacing == pytest.approx([3.0, 0.8, 0.8])
    assert pixel_spacing(0.5, [None]) == [0.5, 0.5]
    assert pixel_spacing(None, [None, None]) is None
    for bad in ("0", "nan", "-2"):
        argv = ["segment", "x.png", "-m", "untrained", "-o", "out", "--pixel-size", bad]
        assert main(argv) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert "--pixel-size must be a positive" in err[-1] and "Traceback" not in "".join(err)
