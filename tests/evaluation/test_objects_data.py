"""Object scores on the real GlaS and DSB 2018 masks (skipped without ../shared/data).

GlaS masks are binary: its objects are their 8-connected components (769 in train, 666
in testA, against the official annotation's gland counts; 1,542 over all 165 masks with
testB against the official 1,530)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from napari_res101unet.evaluation.files import score_files
from napari_res101unet.evaluation.objects import object_tally, pooled_scores
from napari_res101unet.io.folders import read_mask

pytestmark = pytest.mark.data


def test_glas_components_and_masks_against_themselves(data_dir):
    glas = data_dir / "glas"
    counts = {}
    for split in ("train", "testA"):
        masks = [read_mask(p) for p in sorted((glas / split / "masks").glob("*.png"))]
        counts[split] = sum(ndimage.label(m, np.ones((3, 3)))[1] for m in masks)
    assert counts == {"train": 769, "testA": 666}
    result = score_files(glas / "testA" / "masks", glas / "testA" / "masks")
    assert (result["object_f1"], result["object_dice"], result["object_hausdorff"]) == (1, 1, 0)
    assert result["n_true"] == 666 and result["n_images"] == 60


def test_glas_masks_eroded_by_two_pixels(data_dir):
    paths = sorted((data_dir / "glas" / "testA" / "masks").glob("*.png"))
    masks = [read_mask(p) for p in paths]
    eroded = [ndimage.binary_erosion(m, iterations=2) for m in masks]
    pooled = pooled_scores(object_tally(e, m) for e, m in zip(eroded, masks))
    assert pooled["object_f1"] == pytest.approx(0.9932, abs=1e-4)
    assert pooled["object_dice"] == pytest.approx(0.9728, abs=1e-4)
    assert pooled["object_hausdorff"] == pytest.approx(3.177, abs=1e-3)


def test_dsb_instance_masks(data_dir):
    masks = data_dir / "dsb2018_nuclei" / "masks"
    result = score_files(masks, masks)
    assert result["n_true"] == 635 and result["object_f1"] == 1.0
    assert result["objects_from"]["truth"] == "instance ids"
