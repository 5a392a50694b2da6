"""ONNX export checked by onnxruntime (CPU) against PyTorch's probabilities.

Measured max |onnxruntime - PyTorch| on the probabilities (float32, CPU, batch 1 at
64 x 96 and batch 2 at 128 x 64): 3.2e-6 on the small smp Unet below, 3.9e-4 on
Res101_UNet (101 layers of float32 rounding); the tests allow 1e-4 and 1e-3.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

from export_helpers import calibrated, small_unet  # noqa: E402
from napari_res101unet.export import export_model  # noqa: E402
from napari_res101unet.export._network import probability_network  # noqa: E402
from napari_res101unet.model import build_model  # noqa: E402

SIZES = [(1, 64, 96), (2, 128, 64)]  # (batch, Y, X): two spatial sizes, two batch sizes


def max_difference(model, path) -> float:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    net = probability_network(model)
    rng = np.random.default_rng(1)
    worst = 0.0
    for batch, y, x in SIZES:
        data = rng.standard_normal((batch, model.spec.in_channels, y, x)).astype(np.float32)
        (got,) = session.run(None, {"input": data})
        with torch.no_grad():
            want = net(torch.from_numpy(data)).numpy()
        assert got.shape == (batch, model.spec.n_labels if model.spec.classes > 1 else 1, y, x)
        np.testing.assert_allclose(got.sum(1), 1.0, atol=1e-5) if model.spec.classes > 1 else None
        worst = max(worst, float(np.abs(got - want).max()))
    return worst


def test_onnx_matches_pytorch_on_two_sizes_small_unet(tmp_path):
    model = small_unet()
    path = export_model(model, tmp_path / "small", "onnx")
    assert path.name == "small.onnx"
    diff = max_difference(model, path)
    print(f"small smp Unet: max |onnxruntime - torch| = {diff:.2e}")
    assert diff < 1e-4

    proto = onnx.load(str(path))
    onnx.checker.check_model(proto)
    dims = [d.dim_param or d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 1, "y", "x"]
    assert proto.graph.output[0].name == "probabilities"
    meta = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(meta["napari_res101unet.class_names"]) == ["background", "liver", "tumour"]
    assert json.loads(meta["napari_res101unet.normalization"])["mode"] == "window"
    assert meta["napari_res101unet.output"] == "probabilities"
    assert max(op.version for op in proto.opset_import if op.domain in ("", "ai.onnx")) >= 18


def test_export_does_not_overwrite_unless_asked(tmp_path):
    model = small_unet()
    target = tmp_path / "m.pt"
    target.write_bytes(b"keep")
    with pytest.raises(FileExistsError, match="overwrite"):
        export_model(model, target, "torchscript")
    assert target.read_bytes() == b"keep"
    export_model(model, target, "torchscript", overwrite=True)
    assert torch.jit.load(str(target))
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]  # no temporary left


def test_torchscript_runs_at_other_sizes(tmp_path):
    model = small_unet(classes=1)
    path = export_model(model, tmp_path / "m", "torchscript")
    loaded = torch.jit.load(str(path))
    x = torch.randn(2, 1, 96, 64)
    with torch.no_grad():
        np.testing.assert_allclose(loaded(x).numpy(), torch.sigmoid(model(x)).numpy(), atol=1e-5)


@pytest.mark.slow
def test_onnx_matches_pytorch_on_two_sizes_res101_unet(tmp_path):
    torch.manual_seed(0)
    model = calibrated(build_model(in_channels=3, classes=2, normalization="imagenet"), 3)
    path = export_model(model, tmp_path / "res101.onnx", "onnx")
    diff = max_difference(model, path)
    print(f"Res101_UNet: max |onnxruntime - torch| = {diff:.2e}")
    assert diff < 1e-3
