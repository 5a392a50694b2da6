"""The command line: help, info, segment on real files, one-line errors."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from napari_res101unet import save_model
from napari_res101unet.cli import main
from napari_res101unet.io import read_image, write_image
from napari_res101unet.io.outputs import output_path


def test_help_for_every_subcommand(capsys):
    for argv in (["--help"], ["segment", "--help"], ["info", "--help"]):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "--tile-size" in out and "example: napari-res101unet segment" in out


def test_no_command_prints_help_and_fails(capsys):
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().out


def test_info_lists_devices_and_models(small_model, _isolated_model_folder, capsys):
    save_model(small_model, _isolated_model_folder / "demo.safetensors")
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "torch" in out and "cpu (" in out
    assert str(_isolated_model_folder) in out and "demo:" in out
    assert main(["info", "demo"]) == 0
    assert '"in_channels": 3' in capsys.readouterr().out


def test_segment_files_keeps_spacing(small_model, tmp_path, capsys, rng):
    model = save_model(small_model, tmp_path / "m.safetensors")
    vol = rng.integers(-1000, 1000, (3, 40, 48), dtype=np.int16)
    write_image(tmp_path / "ct.nii.gz", vol, spacing=(2.5, 0.7, 0.8))
    from skimage.io import imsave

    imsave(tmp_path / "tile.png", rng.integers(0, 255, (50, 60, 3), dtype=np.uint8))
    code = main(
        [
            "segment",
            str(tmp_path / "ct.nii.gz"),
            str(tmp_path / "tile.png"),
            "-m",
            str(model),
            "-o",
            str(tmp_path / "out"),
            "--device",
            "cpu",
        ]
    )
    assert code == 0
    labels = read_image(tmp_path / "out" / "ct_labels.nii.gz")
    assert labels.data.shape == (3, 40, 48)
    assert labels.spacing == pytest.approx((2.5, 0.7, 0.8))
    assert read_image(tmp_path / "out" / "tile_labels.png").data.shape == (50, 60)
    assert "ct.nii.gz ->" in capsys.readouterr().out


def test_output_names():
    from pathlib import Path

    assert output_path(Path("o"), Path("a/scan.nii.gz"), "labels", None).name == (
        "scan_labels.nii.gz"
    )
    assert output_path(Path("o"), Path("a/x.jpg"), "labels", None).name == "x_labels.png"
    assert output_path(Path("o"), Path("a/x.png"), "labels", "tif").name == "x_labels.tif"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["segment", "missing.png", "-m", "untrained", "-o", "out"], "missing.png does not exist"),
        (["segment", "x.png", "-m", "nomodel", "-o", "out"], "no model 'nomodel'"),
        (["segment", "x.png", "-m", "untrained", "-o", "o", "--device", "tpu"], None),
    ],
)
def test_errors_are_one_line_and_non_zero(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_image(tmp_path / "x.png", np.zeros((40, 40), np.uint8))
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ")
    assert "Traceback" not in "\n".join(err)
    if message:
        assert message in err[-1]


def test_console_script_entry_point():
    out = subprocess.run(
        [sys.executable, "-m", "napari_res101unet.cli", "--version"],
        capture_output=True,
        encoding="utf-8",
        errors="replace",
        check=True,
    )
    assert out.stdout.startswith("napari-res101unet ")
