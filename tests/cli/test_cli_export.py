"""``export`` and ``segment --format dicom-seg`` from the command line."""

from __future__ import annotations

import numpy as np
import pytest

from napari_res101unet import save_model
from napari_res101unet.cli import main


def test_export_help_lists_the_formats(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["export", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "{bioimageio,onnx,torchscript}" in out and "--overwrite" in out


def test_export_bad_input_is_one_line(tmp_path, capsys):
    # bioimage.io options with another format: refused before any model is loaded
    code = main(["export", "missing-model", "--format", "onnx", "-o", str(tmp_path / "m"),
                 "--normalization", "imagenet"])  # fmt: skip
    assert code == 1
    assert "error: --normalization applies to --format bioimageio only" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_segment_dicom_seg_of_a_non_dicom_image_is_refused(tmp_path, capsys):
    from napari_res101unet.io import write_image

    write_image(tmp_path / "ct.nii.gz", np.zeros((2, 32, 32), np.int16), spacing=(1, 1, 1))
    code = main(["segment", str(tmp_path / "ct.nii.gz"), "-m", "untrained",
                 "-o", str(tmp_path / "out"), "--format", "dicom-seg"])  # fmt: skip
    assert code == 1
    err = capsys.readouterr().err
    assert "holds no DICOM images" in err and "DICOM SEG needs the source DICOM series" in err


@pytest.mark.slow
def test_segment_writes_dicom_seg_for_a_dicom_series(small_model, tmp_path, capsys):
    hd = pytest.importorskip("highdicom")
    from dicom_helpers import ct_series
    from napari_res101unet.io._dicom_seg import source_series

    ct_series(tmp_path / "ct")
    model = save_model(small_model, tmp_path / "liver.safetensors")
    code = main(["segment", str(tmp_path / "ct"), "-m", str(model), "-o", str(tmp_path / "out"),
                 "--format", "dicom-seg", "--device", "cpu"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    seg = hd.seg.segread(tmp_path / "out" / "ct_seg.dcm")
    assert [d.SegmentLabel for d in seg.SegmentSequence] == ["foreground"]
    algo = seg.SegmentSequence[0].SegmentationAlgorithmIdentificationSequence[0]
    assert algo.AlgorithmName == "Res101_UNet" and "sha256:" in algo.AlgorithmVersion
    uids = [ds.SOPInstanceUID for ds in source_series(tmp_path / "ct")]
    assert seg.get_pixels_by_source_instance(uids, combine_segments=True).shape == (4, 24, 20)
    assert not (tmp_path / "out" / "ct_labels.nii.gz").exists()


@pytest.mark.slow
def test_export_onnx_and_bioimageio_from_the_command_line(small_model, tmp_path, capsys):
    ort = pytest.importorskip("onnxruntime")
    from napari_res101unet import load_model

    model = save_model(small_model, tmp_path / "m.safetensors")
    assert main(["export", str(model), "--format", "onnx", "-o", str(tmp_path / "m")]) == 0
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    (probs,) = session.run(None, {"input": np.zeros((1, 3, 64, 96), np.float32)})
    assert probs.shape == (1, 2, 64, 96)
    assert main(["export", str(model), "--format", "onnx", "-o", str(tmp_path / "m.onnx")]) == 1
    assert "exists; pass overwrite=True (CLI: --overwrite)" in capsys.readouterr().err

    args = ["export", str(model), "--format", "bioimageio", "-o", str(tmp_path / "p.zip"),
            "--weights", "pytorch_state_dict", "--author", "A. Tester"]  # fmt: skip
    assert main(args) == 1  # the checkpoint's normalisation is 'auto'
    err = capsys.readouterr().err
    assert "error: the model's normalization is 'auto'" in err and "Traceback" not in err
    assert main([*args, "--normalization", "imagenet"]) == 0
    assert load_model(tmp_path / "p.zip").spec.normalization == {"mode": "imagenet"}


def test_export_sample_is_the_middle_slice_of_a_volume(tmp_path):
    from napari_res101unet.cli.export import _sample
    from napari_res101unet.io import write_image

    vol = np.arange(3 * 40 * 48, dtype=np.int16).reshape(3, 40, 48) - 1000
    write_image(tmp_path / "ct.nii.gz", vol, spacing=(2.5, 0.7, 0.8))
    np.testing.assert_array_equal(_sample(tmp_path / "ct.nii.gz"), vol[1])
