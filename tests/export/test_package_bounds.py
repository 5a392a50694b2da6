"""bioimage.io packages are read within bounds (issue 24, item 14): a YAML alias bomb and
an oversized weights entry are refused before they are read, from the zip directory's
declared sizes, a capped read and a count of the YAML nodes the aliases expand to."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import napari_res101unet
from napari_res101unet.errors import CheckpointError
from napari_res101unet.io import _limits
from napari_res101unet.io.bioimageio import read_package

SRC = Path(napari_res101unet.__file__).resolve().parents[1]

RDF = """type: model
weights:
  pytorch_state_dict:
    source: weights.pt
    architecture:
      callable: Unet
      import_from: segmentation_models_pytorch
      kwargs: {encoder_name: resnet101, in_channels: 3, classes: 2}
name: bounded
"""


def alias_bomb(levels: int = 9, width: int = 9) -> str:
    """About 600 bytes of YAML ("billion laughs") whose aliases stand for width**levels
    strings: any walk over its ``type`` (``repr()`` of it) expands them all."""
    lines = [f"l0: &l0 [{', '.join(['lol'] * width)}]"]
    for k in range(1, levels + 1):
        lines.append(f"l{k}: &l{k} [{', '.join([f'*l{k - 1}'] * width)}]")
    return "\n".join(lines) + f"\ntype: *l{levels}\n"  # named in the "not a model" message


def _zip(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


_CHILD = """
import json, resource, sys, time
resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))
from napari_res101unet.io.bioimageio import read_package
started = time.perf_counter()
try:
    read_package(sys.argv[1])
    out = ["read", ""]
except Exception as exc:
    out = [type(exc).__name__, str(exc)]
print(json.dumps([*out, time.perf_counter() - started]))
"""


def _read_in_child(path: Path) -> tuple[str, str, float]:
    env = dict(os.environ, PYTHONPATH=str(SRC), OMP_NUM_THREADS="1")
    try:
        run = subprocess.run([sys.executable, "-c", _CHILD, str(path)], env=env,
                             capture_output=True, text=True, timeout=20)  # fmt: skip
    except subprocess.TimeoutExpired:
        return "timeout", "", 20.0
    lines = run.stdout.strip().splitlines()
    return tuple(json.loads(lines[-1])) if lines else ("crash", run.stderr[-1000:], 0.0)


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_AS is Linux's")
def test_a_yaml_alias_bomb_is_refused_at_once(tmp_path):
    text = alias_bomb()
    assert len(text) < 1000
    path = _zip(tmp_path / "bomb.zip", {"rdf.yaml": text.encode()})
    kind, message, seconds = _read_in_child(path)
    assert kind == "CheckpointError" and seconds < 2.0, (kind, message[:300], seconds)
    assert "bomb.zip" in message and "rdf.yaml" in message and "alias" in message


def test_a_few_honest_aliases_are_still_read(tmp_path):
    text = RDF.replace("kwargs: {", "kwargs: &kw {") + "config: {copy: *kw}\n"
    folder = tmp_path / "pkg"
    folder.mkdir()
    (folder / "rdf.yaml").write_text(text)
    with pytest.raises(CheckpointError, match="cannot read weights.pt"):  # got past the YAML
        read_package(folder)


def test_an_oversized_rdf_is_refused_before_it_is_read(tmp_path, monkeypatch):
    monkeypatch.setattr(_limits, "MAX_PACKAGE_YAML_BYTES", 1000)
    big = RDF + "description: " + "x" * 5000 + "\n"
    with pytest.raises(CheckpointError, match=r"big.zip: rdf.yaml holds 5,.* bytes, over"):
        read_package(_zip(tmp_path / "big.zip", {"rdf.yaml": big.encode()}))


def test_an_oversized_weights_entry_is_refused_from_its_declared_size(tmp_path, monkeypatch):
    monkeypatch.setattr(_limits, "MAX_WEIGHTS_BYTES", 1 << 20)
    path = _zip(tmp_path / "heavy.zip", {"rdf.yaml": RDF.encode(), "weights.pt": bytes(3 << 20)})
    assert path.stat().st_size < 100_000
    with pytest.raises(CheckpointError, match=r"heavy.zip: weights.pt holds 3,145,728 bytes"):
        read_package(path)
    folder = tmp_path / "heavy"
    folder.mkdir()
    (folder / "rdf.yaml").write_text(RDF)
    (folder / "weights.pt").write_bytes(bytes(3 << 20))
    with pytest.raises(CheckpointError, match=r"heavy: weights.pt holds 3,145,728 bytes"):
        read_package(folder)


def test_a_zip_entry_that_inflates_past_its_declared_size_is_refused(tmp_path):
    path = _zip(tmp_path / "liar.zip", {"rdf.yaml": RDF.encode(), "weights.pt": bytes(4096)})
    data = bytearray(path.read_bytes())
    central = data.rindex(b"PK\x01\x02")  # the last entry's central directory record
    data[central + 24 : central + 28] = (100).to_bytes(4, "little")  # claims 100 bytes
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="liar.zip: cannot read weights.pt"):
        read_package(path)


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_AS is Linux's")
def test_a_1_5_gib_weights_entry_in_a_small_zip_is_not_read(tmp_path):
    path = tmp_path / "inflated.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        zf.writestr("rdf.yaml", RDF)
        with zf.open("weights.pt", "w", force_zip64=True) as fh:
            chunk = bytes(64 << 20)
            for _ in range(24):  # 1.5 GiB of zeros
                fh.write(chunk)
    assert path.stat().st_size < 20 << 20
    kind, message, seconds = _read_in_child(path)
    assert kind == "CheckpointError" and seconds < 2.0, (kind, message[:300], seconds)
    assert "weights.pt holds 1,610,612,736 bytes" in message
