from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from napari_res101unet import CheckpointError, build_model, load_model, save_model, segment
from napari_res101unet.checkpoint import read_header


@pytest.fixture(scope="module")
def multi_model():
    torch.manual_seed(3)
    model = build_model(
        in_channels=1,
        classes=3,
        class_names=["bg", "liver", "tumour"],
        normalization={"mode": "window", "window": [-100, 200]},
        tile_size=256,
    )
    model.spec.spacing = [0.8, 0.8]
    return model


def _probs(model, image):
    return segment(image, model, device="cpu", return_probabilities=True)[1]


def test_round_trip_is_bit_identical(multi_model, tmp_path, rng):
    path = save_model(multi_model, tmp_path / "liver")
    assert path.name == "liver.safetensors"
    loaded = load_model(path)
    assert loaded.spec == multi_model.spec
    for key, value in multi_model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key
    image = rng.integers(-1000, 1000, size=(70, 90)).astype(np.int16)
    assert np.array_equal(_probs(multi_model, image), _probs(loaded, image))


def test_header_is_json_with_spec_and_provenance(multi_model, tmp_path):
    path = save_model(multi_model, tmp_path / "m.safetensors", note="hello")
    header = read_header(path)
    assert header["format_version"] == 1
    assert header["spec"]["class_names"] == ["bg", "liver", "tumour"]
    assert header["spec"]["normalization"] == {"mode": "window", "window": [-100, 200]}
    assert header["spec"]["spacing"] == [0.8, 0.8]
    assert {"napari_res101unet", "torch", "segmentation_models_pytorch", "saved"} <= set(
        header["provenance"]
    )
    assert header["note"] == "hello"


def test_failed_save_keeps_the_previous_file(small_model, tmp_path, monkeypatch):
    import safetensors.torch

    path = save_model(small_model, tmp_path / "keep.safetensors")
    before = path.read_bytes()

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.torch, "save_file", broken)
    with pytest.raises(OSError, match="disk full"):
        save_model(small_model, path)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["keep.safetensors"]


def test_truncated_file(small_model, tmp_path):
    path = save_model(small_model, tmp_path / "t.safetensors")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        load_model(path)


def test_garbage_file(tmp_path):
    path = tmp_path / "garbage.safetensors"
    path.write_bytes(b"\x00" * 100)
    with pytest.raises(CheckpointError, match="garbage.safetensors"):
        load_model(path)


class Exploit:
    def __reduce__(self):
        return (os.system, ("touch /tmp/napari_res101unet_pwned",))


def test_pickle_with_code_is_refused_and_never_run(tmp_path):
    marker = "/tmp/napari_res101unet_pwned"
    if os.path.exists(marker):
        os.remove(marker)
    path = tmp_path / "model.pth"
    torch.save({"state_dict": {"x": Exploit()}}, path)
    with pytest.raises(CheckpointError, match="never loaded"):
        load_model(path)
    assert not os.path.exists(marker)


def test_plain_state_dict_pth_loads_with_inferred_spec(multi_model, tmp_path):
    path = tmp_path / "weights.pth"
    torch.save({"state_dict": multi_model.state_dict()}, path)
    with pytest.warns(UserWarning, match="inferred in_channels=1, classes=3"):
        loaded = load_model(path)
    assert (loaded.spec.in_channels, loaded.spec.classes) == (1, 3)
    x = torch.randn(1, 1, 64, 64)
    with torch.no_grad():
        assert torch.equal(loaded(x), multi_model.eval()(x))


def test_smp_save_pretrained_folder_loads(tmp_path):
    import segmentation_models_pytorch as smp

    torch.manual_seed(0)
    net = smp.Unet("resnet101", encoder_weights=None, in_channels=3, classes=2).eval()
    net.save_pretrained(tmp_path / "smp_model")
    loaded = load_model(tmp_path / "smp_model")
    assert (loaded.spec.in_channels, loaded.spec.classes) == (3, 2)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(loaded(x), net(x))


def test_other_architecture_is_named(tmp_path):
    import segmentation_models_pytorch as smp

    smp.Unet("resnet34", encoder_weights=None).save_pretrained(tmp_path / "r34")
    with pytest.raises(CheckpointError, match="encoder 'resnet34'.*Res101_UNet"):
        load_model(tmp_path / "r34")
    r50 = smp.Unet("resnet50", encoder_weights=None)
    torch.save(r50.state_dict(), tmp_path / "r50.pth")
    with pytest.raises(CheckpointError, match="ResNet-50 encoder"):
        load_model(tmp_path / "r50.pth")


def test_file_of_another_tool(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "llm.safetensors"
    save_file({"transformer.wte.weight": torch.zeros(4, 4)}, path)
    with pytest.raises(CheckpointError, match="not a Res101_UNet checkpoint"):
        load_model(path)


def test_mismatched_spec_and_weights(small_model, tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "bad.safetensors"
    header = {"format_version": 1, "spec": {**small_model.spec.to_dict(), "classes": 5}}
    state = {k: v.contiguous() for k, v in small_model.state_dict().items()}
    save_file(state, path, metadata={"napari_res101unet": json.dumps(header)})
    with pytest.raises(CheckpointError, match="classes=5: 0 missing, 0 unexpected, 2 mis-shaped"):
        load_model(path)


def test_newer_format_is_refused(small_model, tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "future.safetensors"
    header = {"format_version": 99, "spec": small_model.spec.to_dict()}
    state = {k: v.contiguous() for k, v in small_model.state_dict().items()}
    save_file(state, path, metadata={"napari_res101unet": json.dumps(header)})
    with pytest.raises(CheckpointError, match="format 99, newer"):
        load_model(path)


def test_missing_and_unknown_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_model(tmp_path / "nope.safetensors")
    other = tmp_path / "model.onnx"
    other.write_bytes(b"onnx")
    with pytest.raises(CheckpointError, match="unknown model file type '.onnx'"):
        load_model(other)


def test_load_onto_unknown_device_is_clear(small_model, tmp_path):
    path = save_model(small_model, tmp_path / "d.safetensors")
    with pytest.raises(ValueError, match="unknown device 'gpu'"):
        load_model(path, device="gpu")


def test_checkpoints_get_normal_file_permissions(small_model, tmp_path):
    mask = os.umask(0)
    os.umask(mask)
    path = save_model(small_model, tmp_path / "shared.safetensors")
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask  # not mkstemp's private 0600
