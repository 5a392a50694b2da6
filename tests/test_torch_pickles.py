"""PyTorch pickle files only on a torch whose weights_only loading is safe (issue 14,
item 4: CVE-2025-32434)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from napari_res101unet.errors import CheckpointError
from napari_res101unet.weights import read_state_dict

REPO = Path(__file__).resolve().parents[1]


def test_the_package_requires_torch_2_6_or_later():
    text = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    found = re.findall(r'"torch>=([0-9.]+)"', text)
    assert found, "no torch requirement in pyproject.toml"
    for version in found:
        assert tuple(int(p) for p in version.split(".")[:2]) >= (2, 6)


def test_pth_files_are_refused_on_an_older_torch(tmp_path, monkeypatch):
    pth = tmp_path / "weights.pth"
    torch.save({"w": torch.zeros(2)}, pth)
    assert set(read_state_dict(pth)) == {"w"}  # this torch is safe
    monkeypatch.setattr(torch, "__version__", "2.5.1+cpu")
    with pytest.raises(CheckpointError, match=r"torch 2\.5\.1\+cpu .*CVE-2025-32434.*2\.6"):
        read_state_dict(pth)
    from safetensors.torch import save_file

    safe = tmp_path / "weights.safetensors"
    save_file({"w": torch.zeros(2)}, str(safe))
    assert set(read_state_dict(safe)) == {"w"}  # safetensors needs no pickle
