"""Shared fixtures. Engine tests need no display; Qt tests live in tests/qt."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
QT_TESTS = Path(__file__).resolve().parent / "qt"


def pytest_ignore_collect(collection_path: Path, config) -> bool | None:
    """Widget tests need a napari process that never imported torch (see tests/qt): they
    run in their own interpreter via tests/test_qt_suite.py, unless asked for directly."""
    path = Path(collection_path).resolve()
    if path != QT_TESTS and QT_TESTS not in path.parents:
        return None
    asked = [Path(str(arg).split("::")[0]).resolve() for arg in config.args]
    return not any(a == QT_TESTS or QT_TESTS in a.parents for a in asked)


DATA = Path(os.environ.get("NAPARI_RES101UNET_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(autouse=True)
def _isolated_model_folder(tmp_path_factory, monkeypatch):
    """Never read or write the user's real model folder."""
    folder = tmp_path_factory.mktemp("models")
    monkeypatch.setenv("NAPARI_RES101UNET_MODELS", str(folder))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return folder


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """``../shared/data`` (or $NAPARI_RES101UNET_DATA); tests using it skip when absent."""
    if not DATA.is_dir():
        pytest.skip(f"real data folder {DATA} is absent")
    return DATA


@pytest.fixture(scope="session")
def small_model():
    """A randomly initialised binary Res101_UNet (shared: tests must not train it)."""
    import torch

    from napari_res101unet import build_model

    torch.manual_seed(0)
    return build_model(in_channels=3, classes=2)


@pytest.fixture
def rng():
    return np.random.default_rng(0)
