"""One way to open a model: registry.open_model, cached by the file's SHA-256 and device,
one seeded untrained build, used by segment, evaluate, the engine, the CLI and dask workers
(tests/inference/test_cluster.py checks the content key and one model per worker)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from napari_res101unet import registry


def _fingerprint(model) -> float:
    return float(sum(p.double().sum() for p in model.parameters()))


def test_untrained_is_one_seeded_build_the_same_in_every_process():
    here = registry.open_model("untrained")
    assert here is registry.open_model(registry.UNTRAINED, "cpu")
    code = (
        "from napari_res101unet import registry;"
        "m = registry.open_model('untrained');"
        "print(repr(float(sum(p.double().sum() for p in m.parameters()))))"
    )
    there = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True)  # fmt: skip
    assert float(there.stdout.strip()) == pytest.approx(_fingerprint(here), rel=0, abs=1e-9)
    assert here.spec.name == "untrained Res101_UNet"


def test_segment_evaluate_and_the_engine_open_models_through_the_registry(
    small_model, tmp_path, monkeypatch
):
    import napari_res101unet as nr
    from napari_res101unet.engine.ops import get_model

    path = nr.save_model(small_model, tmp_path / "m.safetensors")
    opened: list[str] = []
    real = registry.open_model

    def spy(source, device="cpu", **kw):
        opened.append(str(source))
        return real(source, device, **kw)

    monkeypatch.setattr(registry, "open_model", spy)
    image = np.zeros((40, 48), np.uint8)
    nr.segment(image, path, device="cpu", tile_size=64)
    nr.evaluate(path, [(image, np.zeros((40, 48), np.uint8))], device="cpu", tile_size=64)
    first = get_model(str(path))
    assert get_model(str(path)) is first
    assert opened == [str(path)] * 4
    registry.forget_models()
    assert get_model(str(path)) is not first  # a fresh load after forgetting


def test_a_missing_model_names_the_folder_and_its_models(tmp_path):
    with pytest.raises(FileNotFoundError, match="not in the model folder"):
        registry.open_model("nope")
