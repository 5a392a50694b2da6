"""Mutated headers give clean errors only (issue 14): a few hundred seeded byte flips,
field overwrites and truncations of small valid NIfTI, NRRD, PNG, TIFF and safetensors
files, fed to read_image and to read_header/load_model. Each either reads or raises a
ValueError (CheckpointError is one) or FileNotFoundError with a message, within a time
bound; never another exception type."""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from napari_res101unet.checkpoint import load_model, read_header
from napari_res101unet.io import read_image, write_image

PER_FORMAT = 250
SECONDS_PER_FILE = 5.0
CLEAN = (ValueError, FileNotFoundError)
INTERESTING = [0, 1, 2, 127, 128, 255, 0x7F, 0xFF]


def mutations(data: bytes, header: int, seed: int, count: int) -> Iterator[bytes]:
    """``count`` deterministic variants of ``data`` damaged within its first ``header``
    bytes: flipped bits, extreme bytes, 4-byte fields set to huge values, truncations."""
    rng = np.random.default_rng(seed)
    span = max(1, min(header, len(data)))
    for i in range(count):
        out = bytearray(data)
        kind = i % 4
        if kind == 0:  # flip a few bits
            for pos in rng.integers(0, span, rng.integers(1, 4)):
                out[pos] ^= 1 << int(rng.integers(0, 8))
        elif kind == 1:  # extreme bytes
            for pos in rng.integers(0, span, rng.integers(1, 3)):
                out[pos] = INTERESTING[int(rng.integers(0, len(INTERESTING)))]
        elif kind == 2:  # a 32-bit field (size, offset, count) set to something huge
            pos = int(rng.integers(0, max(1, span - 4)))
            value = int(rng.choice([0xFFFFFFFF, 0x7FFFFFFF, 0x10000, 1 << 24, 0]))
            out[pos : pos + 4] = value.to_bytes(4, "little" if rng.integers(2) else "big")
        else:  # cut short
            out = out[: int(rng.integers(0, len(out)))]
        yield bytes(out)


def _base_files(folder: Path) -> dict[str, tuple[Path, int]]:
    """Small valid files and the size of their header region."""
    rng = np.random.default_rng(0)
    vol = rng.integers(0, 400, (4, 8, 8), dtype=np.int16)
    files = {}
    for name, header in (
        ("base.nii", 352),
        ("base.nii.gz", 10**6),  # compressed: damage anywhere
        ("base.nrrd", 300),
        ("base.tif", 400),
    ):
        write_image(folder / name, vol, spacing=(2.0, 0.5, 0.5))
        files[name] = (folder / name, header)
    write_image(folder / "base.png", rng.integers(0, 255, (16, 16, 3), dtype=np.uint8), rgb=True)
    files["base.png"] = (folder / "base.png", 10**6)
    return files


def _checkpoint(folder: Path) -> Path:
    """A checkpoint-shaped safetensors file: a real spec header and one small tensor."""
    spec = {
        "in_channels": 3,
        "classes": 2,
        "class_names": ["background", "foreground"],
        "normalization": {"mode": "auto"},
        "decoder_channels": [256, 128, 64, 32, 16],
        "training": {"history": [{"epoch": 1, "val_iou": 0.5}], "best_epoch": 1},
    }
    header = {"format": "napari-res101unet checkpoint", "format_version": 1, "spec": spec}
    index = {
        "__metadata__": {"napari_res101unet": json.dumps(header)},
        "encoder.conv1.weight": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]},
    }
    blob = json.dumps(index).encode()
    path = folder / "base.safetensors"
    path.write_bytes(len(blob).to_bytes(8, "little") + blob + bytes(16))
    return path


def _check(call: Callable[[Path], object], path: Path, failures: list[str]) -> None:
    started = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            call(path)
    except CLEAN as exc:
        if not str(exc).strip():
            failures.append(f"{path.name}: {type(exc).__name__} without a message")
    except Exception as exc:
        failures.append(f"{path.name}: {type(exc).__name__}: {str(exc)[:200]}")
    seconds = time.perf_counter() - started
    if seconds > SECONDS_PER_FILE:
        failures.append(f"{path.name}: took {seconds:.1f} s")


@pytest.mark.parametrize("name", ["base.nii", "base.nii.gz", "base.nrrd", "base.png", "base.tif"])
def test_mutated_image_headers_give_clean_errors(tmp_path, name):
    path, header = _base_files(tmp_path)[name]
    data = path.read_bytes()
    read_image(path)  # the base file is valid
    failures: list[str] = []
    suffix = name.removeprefix("base")
    for i, variant in enumerate(mutations(data, header, seed=len(name), count=PER_FORMAT)):
        target = tmp_path / f"m{i:03d}{suffix}"
        target.write_bytes(variant)
        _check(read_image, target, failures)
        target.unlink()
    assert not failures, "\n".join(failures[:20])


def test_mutated_checkpoint_headers_give_clean_errors(tmp_path):
    path = _checkpoint(tmp_path)
    data = path.read_bytes()
    assert read_header(path)["spec"]["classes"] == 2
    failures: list[str] = []
    for i, variant in enumerate(mutations(data, len(data), seed=7, count=PER_FORMAT)):
        target = tmp_path / f"m{i:03d}.safetensors"
        target.write_bytes(variant)
        _check(read_header, target, failures)
        _check(load_model, target, failures)
        target.unlink()
    assert not failures, "\n".join(failures[:20])
