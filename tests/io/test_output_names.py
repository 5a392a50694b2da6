"""Outputs are named after the folder ``.``, ``..`` and ``dir/`` stand for (issue 24,
item 15): ``segment .`` inside a DICOM series folder wrote ``_seg.dcm``."""

from __future__ import annotations

from pathlib import Path

import nibabel
import numpy as np
import pytest

from napari_res101unet import save_model
from napari_res101unet.cli import main
from napari_res101unet.config import DICOM_SEG
from napari_res101unet.io.inputs import expand_inputs
from napari_res101unet.io.outputs import plan_outputs, real_name, target_for

FORMATS = [
    (None, "ct_labels.nii.gz"),
    (".tif", "ct_labels.tif"),
    (".nrrd", "ct_labels.nrrd"),
    (".mha", "ct_labels.mha"),
    (DICOM_SEG, "ct_seg.dcm"),
]


@pytest.fixture
def series(tmp_path) -> Path:
    """``tmp_path/ct/inner``: a folder standing for a DICOM series (``ct``), and a
    subfolder to stand in."""
    folder = tmp_path / "ct"
    (folder / "inner").mkdir(parents=True)
    return folder


@pytest.mark.parametrize(("fmt", "name"), FORMATS)
@pytest.mark.parametrize("given", [".", "./", "inner/..", "../ct", "../ct/"])
def test_dot_folders_name_their_outputs(series, monkeypatch, tmp_path, fmt, given, name):
    monkeypatch.chdir(series)
    [(_, labels, _)] = plan_outputs([Path(given)], tmp_path / "out", fmt)
    assert labels == tmp_path / "out" / name, (given, labels)


def test_dot_dot_names_the_parent(series, monkeypatch, tmp_path):
    monkeypatch.chdir(series / "inner")
    [(_, labels, probs)] = plan_outputs([Path("..")], tmp_path / "out", None, probabilities=True)
    assert (labels.name, probs.name) == ("ct_labels.nii.gz", "ct_probabilities.tif")
    assert real_name(Path("..")) == "ct" and real_name(Path("../inner/")) == "inner"


def test_block_outputs_name_the_folder_too(series, monkeypatch, tmp_path):
    store = series / "slide.ome.zarr"
    store.mkdir()
    monkeypatch.chdir(store)
    assert target_for(Path("."), tmp_path, 1) == tmp_path / "slide_labels.zarr"


def test_the_root_has_no_name_to_give(tmp_path):
    with pytest.raises(ValueError, match="has no name to call its output after"):
        real_name(Path("/"))


def test_segment_dot_inside_a_dicom_series(small_model, tmp_path, monkeypatch, capsys):
    from dicom_helpers import ct_series

    ct_series(tmp_path / "ct")
    model = save_model(small_model, tmp_path / "m.safetensors")
    monkeypatch.chdir(tmp_path / "ct")
    assert expand_inputs(["."]) == [Path(".")]
    out = tmp_path / "out"
    code = main(["segment", ".", "-m", str(model), "-o", str(out), "--device", "cpu",
                 "--tile-size", "64"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["ct_labels.nii.gz", "ct_labels.nii.gz.json"]
    labels = nibabel.load(out / "ct_labels.nii.gz")
    assert labels.shape == (20, 24, 4) and np.isfinite(labels.affine).all()
