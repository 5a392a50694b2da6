"""bioimage.io packages: written by export_model, tested by bioimageio.core's own
``test_model`` (every weight format reproduces our test output, at several sizes and batch
sizes), and opened back by ``load_model``."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
import yaml

torch = pytest.importorskip("torch")
bioimageio_core = pytest.importorskip("bioimageio.core")

from export_helpers import calibrated, small_unet  # noqa: E402
from napari_res101unet.checkpoint import CheckpointError, load_model  # noqa: E402
from napari_res101unet.export import export_model  # noqa: E402
from napari_res101unet.model import build_model  # noqa: E402


def passes_bioimageio_test(package) -> list[str]:
    """Run bioimageio.core's test; return the names of the checks it made."""
    summary = bioimageio_core.test_model(package)
    failed = [(d.name, [e.msg[:300] for e in d.errors]) for d in summary.details if d.errors]
    assert summary.status == "passed", failed
    return [d.name for d in summary.details]


def res101(in_channels: int, classes: int, **kwargs):
    torch.manual_seed(0)
    return calibrated(build_model(in_channels, classes, **kwargs), in_channels)


@pytest.mark.slow
def test_rgb_package_with_all_weight_formats_passes_bioimageio_test(tmp_path):
    names = ["background", "gland", "stroma"]
    model = res101(3, 3, normalization="imagenet", class_names=names)
    package = export_model(model, tmp_path / "glands", "bioimageio", authors=["A. Tester"])
    rdf = yaml.safe_load((package / "rdf.yaml").read_text())
    assert set(rdf["weights"]) == {"pytorch_state_dict", "torchscript", "onnx"}
    arch = rdf["weights"]["pytorch_state_dict"]["architecture"]
    assert (arch["import_from"], arch["callable"]) == ("segmentation_models_pytorch", "Unet")
    assert arch["kwargs"]["encoder_name"] == "resnet101" and arch["kwargs"]["classes"] == 3
    assert [a["type"] for a in rdf["inputs"][0]["axes"]] == ["batch", "channel", "space", "space"]
    assert rdf["outputs"][0]["axes"][1]["channel_names"] == names
    ops = [p["id"] for p in rdf["inputs"][0]["preprocessing"]]
    assert ops == ["scale_linear", "fixed_zero_mean_unit_variance", "ensure_dtype"]
    assert {c.get("doi") for c in rdf["cite"]} >= {"10.1007/978-3-319-24574-4_28"}
    for name in ("README.md", "cover.png", "test_input.npy", "test_output.npy"):
        assert (package / name).is_file()
    checks = passes_bioimageio_test(package)
    for fmt in ("onnx", "pytorch_state_dict", "torchscript"):
        assert f"Reproduce test outputs from test inputs ({fmt})" in checks

    loaded = load_model(package)
    assert loaded.spec.class_names == names
    assert loaded.spec.normalization == {"mode": "imagenet"}
    assert (loaded.spec.in_channels, loaded.spec.classes) == (3, 3)
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key


@pytest.mark.slow
def test_ct_package_resolves_auto_from_a_ct_sample_and_opens_from_zip(tmp_path):
    """``auto`` becomes the CT window (as inference decides for int16 HU); a sigmoid head."""
    model = res101(1, 1, class_names=["background", "liver"])
    assert model.spec.normalization == {"mode": "auto"}
    rng = np.random.default_rng(0)
    ct = rng.integers(-1000, 400, (100, 90)).astype(np.int16)
    package = export_model(model, tmp_path / "liver.zip", "bioimageio", sample=ct,
                           weights=["pytorch_state_dict"])  # fmt: skip
    with zipfile.ZipFile(package) as zf:
        rdf = yaml.safe_load(zf.read("rdf.yaml"))
        assert np.load(zf.open("test_input.npy")).shape == (1, 1, 96, 64)
    ops = [p["id"] for p in rdf["inputs"][0]["preprocessing"]]
    assert ops == ["scale_linear", "clip", "fixed_zero_mean_unit_variance", "ensure_dtype"]
    assert (
        rdf["weights"]["pytorch_state_dict"]["architecture"]["kwargs"]["activation"] == "sigmoid"
    )
    passes_bioimageio_test(package)
    loaded = load_model(package)
    assert loaded.spec.normalization == {"mode": "window"}
    assert loaded.spec.class_names == ["background", "liver"]


@pytest.mark.slow
def test_percentile_package_passes_bioimageio_test(tmp_path):
    model = res101(2, 2, normalization={"mode": "percentile", "percentiles": [2.0, 98.0]})
    package = export_model(model, tmp_path / "pct", "bioimageio", weights=["pytorch_state_dict"])
    rdf = yaml.safe_load((package / "rdf.yaml").read_text())
    scale = rdf["inputs"][0]["preprocessing"][0]
    assert scale["id"] == "scale_range"
    assert (scale["kwargs"]["min_percentile"], scale["kwargs"]["max_percentile"]) == (2.0, 98.0)
    passes_bioimageio_test(package)


def test_auto_normalization_without_a_sample_is_refused(tmp_path):
    model = small_unet()
    model.spec.normalization = {"mode": "auto"}
    with pytest.raises(ValueError, match="normalization is 'auto'.*pass normalization="):
        export_model(model, tmp_path / "p", "bioimageio")
    assert not (tmp_path / "p").exists() and not list(tmp_path.iterdir())


def test_incomplete_or_missing_spec_is_refused(tmp_path):
    import segmentation_models_pytorch as smp

    with pytest.raises(TypeError, match=r"got the path .*pass napari_res101unet.load_model"):
        export_model(str(tmp_path / "m.safetensors"), tmp_path / "m.onnx", "onnx")
    bare = smp.Unet("resnet18", encoder_weights=None, classes=2)
    with pytest.raises(TypeError, match="carries no Res101_UNet spec"):
        export_model(bare, tmp_path / "m.onnx", "onnx")
    model = small_unet(classes=3)
    model.spec.classes = 4  # head has 3 outputs: the spec no longer describes the network
    model.spec.class_names = ["a", "b", "c", "d"]
    with pytest.raises(ValueError, match=r"spec is incomplete or wrong: classes 4 != network's 3"):
        export_model(model, tmp_path / "m.onnx", "onnx")
    model = small_unet(classes=3)
    model.spec.class_names = ["background", "", "tumour"]
    with pytest.raises(ValueError, match="class_names"):
        export_model(model, tmp_path / "m", "bioimageio")
    with pytest.raises(ValueError, match="unknown export format 'tflite'; allowed: onnx"):
        export_model(model, tmp_path / "m", "tflite")
    with pytest.raises(ValueError, match=r"takes no option\(s\) \['sample'\]"):
        export_model(model, tmp_path / "m", "onnx", sample=np.zeros((64, 64)))
    with pytest.raises(ValueError, match="pytorch_state_dict is always included"):
        export_model(small_unet(), tmp_path / "m", "bioimageio", weights=["onnx"])
    assert not list(tmp_path.iterdir())


def _package(folder, architecture: dict, weights_key: str = "pytorch_state_dict"):
    folder.mkdir()
    (folder / "weights.pt").write_bytes(b"not read")
    rdf = {
        "format_version": "0.5.4", "type": "model", "name": "other",
        "weights": {weights_key: {"source": "weights.pt", "architecture": architecture}},
    }  # fmt: skip
    (folder / "rdf.yaml").write_text(yaml.safe_dump(rdf))
    return folder


def test_packages_of_other_architectures_are_refused(tmp_path):
    smp34 = {"callable": "Unet", "import_from": "segmentation_models_pytorch",
             "kwargs": {"encoder_name": "resnet34", "classes": 2}}  # fmt: skip
    with pytest.raises(CheckpointError, match="Unet with encoder 'resnet34'.*opens only"):
        load_model(_package(tmp_path / "a", smp34))
    own = {"callable": "UNet2D", "source": "unet.py"}
    with pytest.raises(CheckpointError, match="architecture unet.py.UNet2D"):
        load_model(_package(tmp_path / "b", own))
    with pytest.raises(CheckpointError, match=r"no pytorch_state_dict weights \(it has: onnx\)"):
        load_model(_package(tmp_path / "c", {}, weights_key="onnx"))
    zipped = tmp_path / "d.zip"
    with zipfile.ZipFile(zipped, "w") as zf:
        zf.writestr("README.md", "no description")
    with pytest.raises(CheckpointError, match="not a bioimage.io package"):
        load_model(zipped)
    (tmp_path / "e.zip").write_bytes(b"truncated")
    with pytest.raises(CheckpointError, match="not a readable zip"):
        load_model(tmp_path / "e.zip")
