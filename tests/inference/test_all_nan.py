"""An image with no number in it is refused, not segmented (issue 24, item 16): NaN pixels
are read as the mean intensity, and an all-NaN image has none."""

from __future__ import annotations

import numpy as np
import pytest
from predictors import per_pixel

from napari_res101unet import run_segmentation, save_model
from napari_res101unet.preprocess.normalize import as_stack


@pytest.mark.parametrize("shape", [(40, 48), (3, 40, 48), (40, 48, 3)])
def test_an_all_nan_image_is_refused(shape):
    image = np.full(shape, np.nan, np.float32)
    with pytest.raises(ValueError, match=r"only NaN .*nothing to segment"):
        as_stack(image, allow_nan=True)
    with pytest.raises(ValueError, match=r"only NaN"):
        run_segmentation(image, per_pixel)


def test_one_all_nan_slice_of_a_volume_is_still_read_as_the_mean():
    image = np.random.default_rng(0).random((3, 40, 48)).astype(np.float32)
    image[1] = np.nan
    result = run_segmentation(image, per_pixel)
    assert result.labels.shape == (3, 40, 48)
    assert "1920 NaN pixels read as the mean intensity" in result.summary()


def test_the_cli_reports_an_all_nan_file_as_failed(small_model, tmp_path, capsys):
    from napari_res101unet.cli import main
    from napari_res101unet.io import write_image

    model = save_model(small_model, tmp_path / "m.safetensors")
    write_image(tmp_path / "void.nii.gz", np.full((2, 40, 48), np.nan, np.float32))
    code = main(["segment", str(tmp_path / "void.nii.gz"), "-m", str(model),
                 "-o", str(tmp_path / "out"), "--device", "cpu"])  # fmt: skip
    assert code != 0
    err = capsys.readouterr().err
    assert "void.nii.gz" in err and "only NaN" in err
    assert not list((tmp_path / "out").glob("void_*"))
