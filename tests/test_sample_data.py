"""Packaged sample data: shapes, masks, the liver split, and the npe2 sample functions."""

from __future__ import annotations

import subprocess
import sys
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from napari_res101unet import _sample_data, samples
from napari_res101unet.samples import SAMPLES, load_sample


def test_liver_ct_sample():
    liver = load_sample("liver_ct")
    assert liver["image"].shape == (42, 256, 256) and liver["image"].dtype == np.uint8
    assert liver["labels"].shape == (42, 256, 256) and liver["labels"].dtype == np.uint8
    assert set(np.unique(liver["labels"])) == {0, 1}
    assert all(liver["labels"][i].mean() > 0.08 for i in range(42))  # clearly visible liver
    assert liver["image"].std() > 30  # real CT, not blank
    assert liver["spacing"] == (1.0, 1.0, 1.0)
    assert len(liver["volume_ids"]) == len(liver["source_files"]) == 42


def test_liver_split_is_by_volume():
    liver = load_sample("liver_ct")
    train, test = liver["split"]["train"], liver["split"]["test"]
    assert len(train) == 40 and len(test) == 2
    assert sorted(train + test) == list(range(42))
    train_ids = {liver["volume_ids"][i] for i in train}
    test_ids = {liver["volume_ids"][i] for i in test}
    assert len(train_ids) == 20 and len(test_ids) == 2
    assert not train_ids & test_ids
    for i, name in enumerate(liver["source_files"]):  # e.g. flipped_10004_130.jpg
        assert int(name.split("_")[1]) == liver["volume_ids"][i]


def test_nuclei_sample():
    nuclei = load_sample("nuclei")
    assert nuclei["image"].shape == (512, 512) and nuclei["image"].dtype == np.uint8
    assert nuclei["labels"].shape == (512, 512)
    assert len(np.unique(nuclei["labels"])) - 1 == nuclei["objects"] > 100
    assert 0.05 < (nuclei["labels"] > 0).mean() < 0.6


def test_unknown_sample_names_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown sample 'glas'.*liver_ct.*nuclei"):
        load_sample("glas")


def test_sample_files_are_small_and_licensed():
    folder = resources.files("napari_res101unet.samples")
    total = sum(f.stat().st_size for f in Path(samples.__file__).parent.iterdir() if f.is_file())
    assert total < 2_000_000
    for name in SAMPLES:
        text = folder.joinpath(f"LICENSE-{name}.md").read_text(encoding="utf-8")
        assert {"liver_ct": "CC BY-SA 4.0", "nuclei": "BSD 3-Clause"}[name] in text
    liver_notice = folder.joinpath("LICENSE-liver_ct.md").read_text(encoding="utf-8")
    assert "Antonelli" in liver_notice and "Bilic" in liver_notice


def test_npe2_sample_functions_return_image_and_labels_layers():
    for func in (_sample_data.liver_ct, _sample_data.nuclei):
        (image, image_kw, image_kind), (labels, labels_kw, labels_kind) = func()
        assert (image_kind, labels_kind) == ("image", "labels")
        assert image.shape == labels.shape
        assert image_kw["name"] and labels_kw["name"]
        assert len(image_kw["scale"]) == image.ndim
    (_, kwargs, _), _ = _sample_data.liver_ct()
    assert kwargs["contrast_limits"] == (0, 255)
    assert kwargs["metadata"]["split"]["test"] == [40, 41]


def test_loading_samples_imports_neither_torch_nor_qt():
    code = (
        "import sys; from napari_res101unet.samples import load_sample;"
        "import napari_res101unet._sample_data, napari_res101unet._reader;"
        "import napari_res101unet._writer; load_sample('liver_ct');"
        "print(sorted(m for m in ('torch', 'torchvision', 'qtpy', 'PyQt6') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        encoding="utf-8",
        errors="replace",
        check=True,
    )
    assert out.stdout.strip() == "[]"
