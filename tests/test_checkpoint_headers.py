"""Checkpoint headers are bounded and validated before anything is allocated; every
malformed one is a CheckpointError; one bad file never breaks the model list (issue 14,
item 6)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from napari_res101unet.checkpoint import load_model, read_header
from napari_res101unet.errors import CheckpointError
from napari_res101unet.registry import list_models

GOOD_SPEC = {
    "in_channels": 3,
    "classes": 2,
    "class_names": ["background", "foreground"],
    "normalization": {"mode": "auto"},
    "decoder_channels": [256, 128, 64, 32, 16],
}


def forged(path: Path, header, *, raw_meta: str | None = None) -> Path:
    """A safetensors file (one tiny tensor) whose napari-res101unet header is ``header``."""
    meta = raw_meta if raw_meta is not None else json.dumps(header)
    index = {
        "__metadata__": {"napari_res101unet": meta},
        "t": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
    }
    blob = json.dumps(index).encode()
    path.write_bytes(len(blob).to_bytes(8, "little") + blob + b"\0\0\0\0")
    return path


def _nested(depth: int) -> list:
    value: list = [1]
    for _ in range(depth):
        value = [value]
    return value


def spec(**change):
    return {"format_version": 1, "spec": {**GOOD_SPEC, **change}}


@pytest.mark.parametrize(
    ("header", "match"),
    [
        (spec(classes=10**9), r"classes must be 1\.\.1024, got 1000000000"),
        (spec(in_channels=100_000), r"in_channels must be 1\.\.512"),
        (spec(decoder_channels=[10**6] * 5), r"decoder width must be 1\.\.1024"),
        (spec(decoder_channels=[256, 128]), "decoder_channels must be a list of 5 ints"),
        (spec(class_names=[{"a": 1}, 2]), "class_names must be strings"),
        (spec(class_names=["x"] * 100_000), "class_names must be a list of at most 1024"),
        (spec(tile_size="big"), "tile_size must be an int"),
        (spec(spacing="1,1"), "spacing must be a list of numbers"),
        (spec(name=["x"]), "name must be a string"),
        (spec(training=[1, 2]), "training must be a JSON object"),
        (spec(in_channels=True), "in_channels must be an int"),
        ({"format_version": 1, "spec": [1, 2, 3]}, "must be a JSON object, got list"),
        ({"format_version": 1}, "must be a JSON object, got NoneType"),
        ({"format_version": "1", "spec": GOOD_SPEC}, "format '1'"),
        ({"format_version": 99, "spec": GOOD_SPEC}, "format 99"),
        (spec(normalization={"mode": "auto", "x": _nested(40)}), "nested deeper than 32"),
    ],
)
def test_a_forged_spec_is_refused_before_any_network_is_built(tmp_path, header, match):
    path = forged(tmp_path / "m.safetensors", header)
    with pytest.raises(CheckpointError, match=match):
        load_model(path)


@pytest.mark.parametrize(
    ("raw_meta", "match"),
    [
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ("[1, 2]", "not a JSON object"),
        ("{not json", "not valid JSON"),
    ],
)
def test_malformed_header_json_is_a_checkpoint_error(tmp_path, raw_meta, match):
    path = forged(tmp_path / "m.safetensors", None, raw_meta=raw_meta)
    with pytest.raises(CheckpointError, match=match):
        read_header(path)
    with pytest.raises(CheckpointError, match=match):
        load_model(path)


def test_a_deeply_nested_safetensors_index_is_a_checkpoint_error(tmp_path):
    blob = ("[" * 100_000 + "]" * 100_000).encode()
    path = tmp_path / "deep.safetensors"
    path.write_bytes(len(blob).to_bytes(8, "little") + blob)
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        read_header(path)


def test_one_bad_file_or_a_dangling_link_is_listed_as_unreadable(tmp_path, small_model):
    from napari_res101unet import save_model

    save_model(small_model, tmp_path / "good.safetensors")
    forged(tmp_path / "deep.safetensors", None, raw_meta="[" * 100_000 + "]" * 100_000)
    forged(tmp_path / "listspec.safetensors", {"format_version": 1, "spec": [1]})
    (tmp_path / "gone.safetensors").symlink_to(tmp_path / "missing.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"\xff" * 20)
    entries = {e.name: e for e in list_models(tmp_path)}
    assert set(entries) == {"good", "deep", "listspec", "gone", "junk"}
    assert entries["good"].readable and entries["good"].classes == ["background", "foreground"]
    for name in ("deep", "listspec", "gone", "junk"):
        assert not entries[name].readable
        assert entries[name].summary.startswith("unreadable: "), entries[name]
    assert "missing file" in entries["gone"].summary
