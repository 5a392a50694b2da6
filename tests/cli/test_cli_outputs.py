"""``segment`` checks every output before any work (issue 14, item 1): inputs that would
share an output, outputs that are inputs and existing files are refused in one message
(bytes unchanged); inputs of several folders keep their relative folders under OUT."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from napari_res101unet.cli import main
from napari_res101unet.io import read_image, write_image


def _run(*argv: str) -> int:
    return main(["segment", *argv, "-m", "untrained", "--device", "cpu", "--tile-size", "64"])


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_two_inputs_with_one_output_name_are_refused_and_nothing_is_written(tmp_path, capsys):
    write_image(tmp_path / "x.png", np.zeros((40, 40), np.uint8))
    from skimage.io import imsave

    imsave(tmp_path / "x.jpg", np.full((40, 40, 3), 90, np.uint8))
    before = _files(tmp_path)
    out = tmp_path / "out"
    assert _run(str(tmp_path / "x.jpg"), str(tmp_path / "x.png"), "-o", str(out)) == 1
    err = capsys.readouterr().err
    assert "x_labels.png: the output of both" in err and "x.jpg and" in err
    assert err.strip().splitlines()[-1].startswith("error: 1 output(s) would collide")
    assert _files(tmp_path) == before and not out.exists()


def test_an_existing_labels_file_is_kept_unless_overwrite(tmp_path, capsys, rng):
    vol = rng.integers(-1000, 1000, (2, 40, 48), dtype=np.int16)
    write_image(tmp_path / "scan.nii.gz", vol, spacing=(2.0, 0.8, 0.8))
    truth = tmp_path / "scan_labels.nii.gz"  # the ground truth the train CLI would use
    write_image(truth, np.ones((2, 40, 48), np.uint8), spacing=(2.0, 0.8, 0.8))
    before = truth.read_bytes()
    assert _run(str(tmp_path / "scan.nii.gz"), "-o", str(tmp_path)) == 1
    err = capsys.readouterr().err
    assert f"{truth}: the output of {tmp_path / 'scan.nii.gz'} already exists" in err
    assert "--overwrite" in err
    assert truth.read_bytes() == before
    assert _run(str(tmp_path / "scan.nii.gz"), "-o", str(tmp_path), "--overwrite") == 0
    assert truth.read_bytes() != before
    assert read_image(truth).data.shape == (2, 40, 48)


def test_an_output_that_is_an_input_is_refused_even_with_overwrite(tmp_path, capsys):
    write_image(tmp_path / "x.png", np.zeros((40, 40), np.uint8))
    write_image(tmp_path / "x_labels.png", np.full((40, 40), 7, np.uint8))
    before = _files(tmp_path)
    argv = [str(tmp_path / "x.png"), str(tmp_path / "x_labels.png"), "-o", str(tmp_path)]
    assert _run(*argv, "--overwrite") == 1
    assert "is an input" in capsys.readouterr().err
    assert _files(tmp_path) == before


def test_inputs_of_several_folders_keep_their_folders_under_out(tmp_path, capsys, rng):
    for case in ("case_00000", "case_00001"):
        vol = rng.integers(-1000, 1000, (2, 40, 48), dtype=np.int16)
        write_image(tmp_path / "kits" / case / "imaging.nii.gz", vol, spacing=(3.0, 0.8, 0.8))
    out = tmp_path / "out"
    inputs = [str(p) for p in sorted((tmp_path / "kits").glob("*/imaging.nii.gz"))]
    assert _run(*inputs, "-o", str(out)) == 0
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*.nii.gz"))
    assert written == [
        "case_00000/imaging_labels.nii.gz",
        "case_00001/imaging_labels.nii.gz",
    ]
    assert _run(*inputs, "-o", str(out)) == 1  # a second run: both exist
    err = capsys.readouterr().err
    assert err.count("already exists") == 2 and "2 output(s)" in err


def test_two_dicom_folders_named_ct_get_distinct_outputs(tmp_path):
    from napari_res101unet.io.outputs import plan_outputs

    for patient in ("p1", "p2"):
        (tmp_path / patient / "CT").mkdir(parents=True)
    sources = [tmp_path / "p1" / "CT", tmp_path / "p2" / "CT"]
    plans = plan_outputs(sources, tmp_path / "out", None, probabilities=True)
    targets = [p[1] for p in plans] + [p[2] for p in plans]
    assert targets == [
        tmp_path / "out" / "p1" / "CT_labels.nii.gz",
        tmp_path / "out" / "p2" / "CT_labels.nii.gz",
        tmp_path / "out" / "p1" / "CT_probabilities.tif",
        tmp_path / "out" / "p2" / "CT_probabilities.tif",
    ]
    one = plan_outputs([tmp_path / "p1" / "CT"], tmp_path / "out", None)
    assert one[0][1] == tmp_path / "out" / "CT_labels.nii.gz"  # one input: flat, as before
    with pytest.raises(FileNotFoundError, match="nothere does not exist"):
        plan_outputs([tmp_path / "nothere"], tmp_path / "out", None)
