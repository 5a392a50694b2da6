"""``segment --instances``: object ids in the label files, in memory and block by block."""

from __future__ import annotations

import numpy as np
import pytest

from napari_res101unet.cli import main
from napari_res101unet.io import read_image, write_image
from napari_res101unet.io.provenance import read_sidecar


def _bright(x):
    """Foreground where the first channel is bright (no network)."""
    import torch

    return torch.cat([torch.zeros_like(x[:, :1]), x[:, :1] * 3 - 1], dim=1)


def _discs() -> np.ndarray:
    yy, xx = np.mgrid[:96, :120]
    image = np.zeros((96, 120), np.uint8)
    for cy, cx in ((30, 30), (30, 52), (70, 90), (10, 110)):
        image[(yy - cy) ** 2 + (xx - cx) ** 2 <= 121] = 255
    return image


def test_segment_instances_writes_one_id_per_object(tmp_path, monkeypatch, capsys):
    from napari_res101unet import registry

    monkeypatch.setattr(registry, "open_model", lambda *a, **k: _bright)
    write_image(tmp_path / "discs.png", _discs())
    assert main(["segment", str(tmp_path / "discs.png"), "-m", "untrained", "-o",
                 str(tmp_path / "out"), "--device", "cpu", "--instances"]) == 0  # fmt: skip
    labels = read_image(tmp_path / "out" / "discs_labels.png").data
    assert labels.max() == 4  # the touching two split (written in the smallest dtype)
    assert labels[30, 30] != labels[30, 52]
    record = read_sidecar(tmp_path / "out" / "discs_labels.png")
    assert record["settings"]["instances"] is True
    assert main(["segment", str(tmp_path / "discs.png"), "-m", "untrained", "-o",
                 str(tmp_path / "cc"), "--instances", "--instance-method", "components",
                 "--min-object-size", "400"]) == 0  # fmt: skip
    assert read_image(tmp_path / "cc" / "discs_labels.png").data.max() == 1  # the pair


def test_a_bad_instance_method_is_refused_before_any_work(tmp_path, capsys):
    write_image(tmp_path / "discs.png", _discs())
    flags = ["--instances", "--instance-method", "stardist"]
    code = main(["segment", str(tmp_path / "discs.png"), "-m", "untrained", "-o",
                 str(tmp_path / "out"), *flags])  # fmt: skip
    assert code != 0 and "instance_method must be one of" in capsys.readouterr().err
    assert not (tmp_path / "out" / "discs_labels.png").exists()


@pytest.mark.slow
def test_a_zarr_gives_the_objects_of_the_in_memory_run(tmp_path, small_model, capsys):
    """Block by block, connected components stitch into exactly the in-memory ones."""
    zarr = pytest.importorskip("zarr")
    from napari_res101unet import save_model, segment
    from napari_res101unet.io.label_store import open_labels

    rng = np.random.default_rng(1)
    image = (rng.random((100, 120, 3)) * 255).astype(np.uint8)
    zarr.create_array(str(tmp_path / "big.zarr"), shape=image.shape, chunks=(32, 32, 3),
                      dtype="uint8")[:] = image  # fmt: skip
    model = save_model(small_model, tmp_path / "m.safetensors")
    opts = ["--tile-size", "64", "--batch-size", "1", "--device", "cpu", "--instances",
            "--instance-method", "components", "--no-fill-holes"]  # fmt: skip
    assert main(["segment", str(tmp_path / "big.zarr"), "-m", str(model), "-o",
                 str(tmp_path / "labels.zarr"), "--block-size", "64", *opts]) == 0  # fmt: skip
    blocks = np.asarray(open_labels(tmp_path / "labels.zarr")[:])
    assert f"{blocks.max()} objects, ids unique over the image" in capsys.readouterr().out
    memory = segment(image, str(model), tile_size=64, batch_size=1, device="cpu",
                     instances=True, instance_method="components", fill_holes=False)  # fmt: skip
    assert blocks.dtype == np.uint32 and blocks.max() == memory.max() > 0
    pairs = np.unique(np.stack([blocks.ravel(), memory.ravel().astype(np.uint32)]), axis=1)
    assert pairs.shape[1] == memory.max() + 1  # the same objects, one to one
