"""Settings travel whole: every SegmentSettings field, set away from its default, arrives
where the labels are made on each path (in memory, block by block, a cohort of files, the
engine process, the napari API, the command line) and is what the result records. The
Segment widget's path is tested in tests/qt/test_segment_widget.py."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from napari_res101unet.config import BlockwiseSettings, SegmentSettings

EVERY_FIELD = SegmentSettings(
    tile_size=64,
    overlap=0.3,
    batch_size=2,
    device="cpu",
    tta=True,
    threshold=0.3,
    blending="constant",
    mixed_precision=False,
    instances=True,
    instance_method="components",
    per_slice=True,
    min_object_size=3,
    fill_holes=False,
)


def test_every_field_differs_from_its_default():
    for f in dataclasses.fields(SegmentSettings):
        assert getattr(EVERY_FIELD, f.name) != f.default, f.name


def _bright(x):
    """A cheap predictor: foreground where the first channel is bright."""
    import torch

    return torch.cat([torch.zeros_like(x[:, :1]), x[:, :1] * 3 - 1], dim=1)


def _image(shape=(96, 120)) -> np.ndarray:
    rng = np.random.default_rng(0)
    return (rng.random(shape).cumsum(axis=1) * 4).astype(np.uint8)


def _arrived(settings: dict | SegmentSettings) -> None:
    found = settings if isinstance(settings, dict) else settings.as_dict()
    assert found == EVERY_FIELD.as_dict()


def test_in_memory_the_plan_and_the_result_follow_every_field():
    from napari_res101unet import run_segmentation

    result = run_segmentation(_image(), _bright, EVERY_FIELD, normalization="minmax")
    _arrived(result.settings)
    assert result.plan.tile == (64, 64) and result.plan.batch_size == 2
    assert result.plan.blending == "constant" and result.plan.overlap == 0.3
    assert "tta" in result.notes and result.device.startswith("cpu")
    # keywords override the object, and build it when there is none
    again = run_segmentation(_image(), _bright, EVERY_FIELD, threshold=0.6, normalization="minmax")
    assert again.settings == dataclasses.replace(EVERY_FIELD, threshold=0.6)
    built = run_segmentation(_image(), _bright, normalization="minmax", **EVERY_FIELD.as_dict())
    _arrived(built.settings)
    with pytest.raises(TypeError, match="unknown SegmentSettings field"):
        run_segmentation(_image(), _bright, tile=64)


def test_block_by_block_the_task_and_the_store_keep_every_field(tmp_path):
    zarr = pytest.importorskip("zarr")
    from napari_res101unet.inference.blockwise import segment_blocks
    from napari_res101unet.io.label_store import MARK, open_labels

    image = _image((130, 150))
    zarr.create_array(str(tmp_path / "in.zarr"), shape=image.shape, dtype=image.dtype)[:] = image
    result = segment_blocks(tmp_path / "in.zarr", _bright, tmp_path / "out.zarr", EVERY_FIELD,
                            block_size=64, normalization="minmax")  # fmt: skip
    _arrived(result.settings)
    assert result.blockwise == BlockwiseSettings(block_size=64)
    assert result.plan.tile == (64, 64) and result.plan.blending == "constant"
    attrs = dict(zarr.open_group(result.path, mode="r").attrs)[MARK]
    _arrived(attrs["settings"])
    assert attrs["blockwise"]["block_size"] == 64
    assert open_labels(result.path).shape == image.shape


def test_a_cohort_records_every_field_in_each_sidecar(tmp_path, monkeypatch):
    from napari_res101unet import registry
    from napari_res101unet.inference.cohort import segment_files
    from napari_res101unet.io import write_image
    from napari_res101unet.io.provenance import read_sidecar

    monkeypatch.setattr(registry, "open_model", lambda *a, **k: _bright)
    for name in ("a.png", "b.png"):
        write_image(tmp_path / "in" / name, _image())
    result = segment_files(tmp_path / "in", "untrained", tmp_path / "out", EVERY_FIELD)
    assert result.count("done") == 2 and not result.failed
    for name in ("a_labels.png", "b_labels.png"):
        record = read_sidecar(tmp_path / "out" / name)
        _arrived({k: record["settings"][k] for k in EVERY_FIELD.as_dict()})


def test_the_command_line_sets_every_field(tmp_path, monkeypatch):
    from napari_res101unet import registry
    from napari_res101unet.cli import main
    from napari_res101unet.io import write_image
    from napari_res101unet.io.provenance import read_sidecar

    monkeypatch.setattr(registry, "open_model", lambda *a, **k: _bright)
    write_image(tmp_path / "in.png", _image())
    flags = ["--tile-size", "64", "--overlap", "0.3", "--batch-size", "2", "--device", "cpu",
             "--tta", "--threshold", "0.3", "--blending", "constant",
             "--no-mixed-precision", "--instances", "--instance-method", "components",
             "--per-slice", "--min-object-size", "3", "--no-fill-holes"]  # fmt: skip
    assert main(["segment", str(tmp_path / "in.png"), "-m", "untrained", "-o",
                 str(tmp_path / "out"), *flags]) == 0  # fmt: skip
    record = read_sidecar(tmp_path / "out" / "in_labels.png")
    _arrived({k: record["settings"][k] for k in EVERY_FIELD.as_dict()})


def test_the_napari_api_keeps_every_field_on_the_layer():
    pytest.importorskip("napari")
    from napari.components import ViewerModel

    from napari_res101unet import viewer as api

    viewer = ViewerModel()
    viewer.add_image(_image(), name="img")
    request = api.segment_request(viewer, "img", "untrained", EVERY_FIELD)
    assert request.payload()["settings"] is EVERY_FIELD  # the object itself, not a copy of fields
    layer = api.segment_layer(viewer, "img", "untrained", EVERY_FIELD, in_process=True)
    _arrived(layer.metadata["napari_res101unet"]["settings"])


@pytest.mark.slow
def test_the_engine_process_receives_and_reports_every_field(tmp_path):
    zarr = pytest.importorskip("zarr")
    from napari_res101unet.engine import protocol as P
    from napari_res101unet.engine.client import EngineClient

    image = _image((64, 64))
    store = tmp_path / "in.zarr"
    zarr.create_array(str(store), shape=image.shape, dtype=image.dtype)[:] = image
    client = EngineClient("settings-travel", start_timeout=240)
    try:
        client.start()
        reply = client.call(P.SEGMENT, image=image, model="untrained", settings=EVERY_FIELD,
                            options={"channel_axis": None})  # fmt: skip
        _arrived(reply["settings"])
        blocks = client.call(P.SEGMENT_BLOCKS, source=str(store), output=str(tmp_path / "o.zarr"),
                             model="untrained", settings=EVERY_FIELD,
                             blockwise=BlockwiseSettings(block_size=64), axes="yx")  # fmt: skip
        _arrived(blocks["settings"])
        assert json.loads(json.dumps(blocks["blockwise"]))["block_size"] == 64
    finally:
        client.stop()


@pytest.mark.slow
def test_a_cohort_from_napari_runs_in_the_engine_with_every_field(tmp_path):
    """viewer.segment_files: the cohort runs in the engine process (napari's process stays
    torch-free), the settings objects travel whole and each sidecar records them."""
    from napari_res101unet import viewer as api
    from napari_res101unet.io import write_image
    from napari_res101unet.io.provenance import read_sidecar

    for name in ("a.png", "b.png"):
        write_image(tmp_path / "in" / name, _image((64, 64)))
    seen: list[dict] = []
    reply = api.segment_files(tmp_path / "in", "untrained", tmp_path / "out", EVERY_FIELD,
                              progress=seen.append, probabilities=True)  # fmt: skip
    assert [s["status"] for s in reply["statuses"]] == ["done", "done"]
    assert seen[-1]["done"] == seen[-1]["total"] == 2
    for name in ("a", "b"):
        record = read_sidecar(tmp_path / "out" / f"{name}_labels.png")
        _arrived({k: record["settings"][k] for k in EVERY_FIELD.as_dict()})
        assert (tmp_path / "out" / f"{name}_probabilities.tif").is_file()
