from __future__ import annotations

import time
import warnings

import pytest
import torch

from napari_res101unet import ModelSpec, build_model


@pytest.mark.parametrize(("in_channels", "classes"), [(1, 2), (3, 2), (5, 4), (3, 1)])
def test_forward_backward_shapes(in_channels, classes):
    torch.manual_seed(0)
    model = build_model(in_channels=in_channels, classes=classes)
    assert model.spec.in_channels == in_channels
    assert model.spec.classes == classes
    assert len(model.spec.class_names) == max(classes, 2)
    model.train()
    x = torch.randn(2, in_channels, 64, 64)
    y = model(x)
    assert y.shape == (2, classes, 64, 64)
    y.mean().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None for g in grads)
    assert any(float(g.abs().sum()) > 0 for g in grads)


def test_encoder_is_resnet101():
    model = build_model()
    assert model.__class__.__name__ == "Unet"
    assert len(model.encoder.layer3) == 23  # ResNet-101: 3, 4, 23, 3 bottlenecks
    n = sum(p.numel() for p in model.parameters())
    assert 50e6 < n < 53e6


def test_spec_defaults_and_class_names():
    spec = build_model(classes=3, class_names=["bg", "liver"]).spec
    assert spec.class_names == ["bg", "liver", "class 2"]
    assert spec.normalization == {"mode": "auto"}
    assert spec.encoder_weights == "random"
    assert ModelSpec.from_dict(spec.to_dict()) == spec


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"in_channels": 0}, ValueError, "in_channels must be >= 1"),
        ({"classes": "2"}, TypeError, "classes must be an int"),
        ({"encoder_weights": "foo"}, ValueError, "unknown encoder_weights 'foo'"),
        ({"encoder_weights": 3}, TypeError, "encoder_weights must be"),
        ({"normalization": "bogus"}, ValueError, "normalization mode 'bogus'"),
        ({"encoder_weights": "/no/such/resnet.pth"}, ValueError, "does not exist"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        build_model(**kwargs)


def test_spec_refuses_other_architectures():
    with pytest.raises(ValueError, match="this plugin runs Res101_UNet"):
        ModelSpec(encoder="resnet34")


@pytest.fixture(scope="module")
def torchvision_weights(tmp_path_factory):
    import torchvision

    torch.manual_seed(1)
    state = torchvision.models.resnet101(weights=None).state_dict()
    path = tmp_path_factory.mktemp("w") / "resnet101-local.pth"
    torch.save(state, path)
    return path, state


def test_local_torchvision_weights_are_mapped_onto_the_encoder(torchvision_weights):
    path, state = torchvision_weights
    model = build_model(encoder_weights=str(path))
    enc = model.encoder.state_dict()
    for key in ("conv1.weight", "layer3.22.conv2.weight", "layer4.2.bn3.running_var"):
        assert torch.equal(enc[key], state[key])
    assert model.spec.encoder_weights.startswith("file:resnet101-local.pth (sha256 ")


def test_local_weights_with_other_channel_counts(torchvision_weights):
    path, state = torchvision_weights
    gray = build_model(in_channels=1, encoder_weights=path)
    assert torch.allclose(gray.encoder.conv1.weight, state["conv1.weight"].sum(1, keepdim=True))
    five = build_model(in_channels=5, encoder_weights=path)
    assert five.encoder.conv1.weight.shape == (64, 5, 7, 7)
    assert five(torch.randn(1, 5, 64, 64)).shape == (1, 2, 64, 64)


def test_timm_style_safetensors_with_prefix_and_head(torchvision_weights, tmp_path):
    from safetensors.torch import save_file

    _, state = torchvision_weights
    prefixed = {f"module.{k}": v.clone() for k, v in state.items()}
    prefixed["module.extra.bias"] = torch.zeros(3)
    path = tmp_path / "timm_resnet101.safetensors"
    save_file(prefixed, path)
    with pytest.warns(UserWarning, match="1 keys not used by the encoder"):
        model = build_model(encoder_weights=path)
    assert torch.equal(model.encoder.conv1.weight, state["conv1.weight"])


def test_resnet50_weights_are_refused(tmp_path):
    import torchvision

    path = tmp_path / "resnet50.pth"
    torch.save(torchvision.models.resnet50(weights=None).state_dict(), path)
    with pytest.raises(ValueError, match="not a ResNet-101 state dict: .*missing keys"):
        build_model(encoder_weights=path)


class Payload:
    def __reduce__(self):
        return (print, ("code ran",))


def test_pickled_objects_are_never_loaded_as_weights(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"conv1.weight": Payload()}, path)
    with pytest.raises(ValueError, match="weights_only"):
        build_model(encoder_weights=path)


def test_imagenet_offline_fails_fast_with_advice(monkeypatch):
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "try_to_load_from_cache", lambda *a, **k: None)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    with pytest.raises(ValueError, match="local ResNet-101 weights file"):
        build_model(encoder_weights="imagenet")
    assert time.perf_counter() - start < 10


def test_imagenet_unreachable_host_fails_fast(monkeypatch):
    import socket

    import huggingface_hub

    def refuse(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(huggingface_hub, "try_to_load_from_cache", lambda *a, **k: None)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(socket, "create_connection", refuse)
    with warnings.catch_warnings(), pytest.raises(ValueError, match="cannot be reached"):
        build_model(encoder_weights="imagenet")
