"""Packaging: the manifest, lazy imports and no Qt on import."""

from __future__ import annotations

import subprocess
import sys

import napari_res101unet


def _run(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_import_pulls_in_neither_qt_nor_torch():
    code = (
        "import sys, napari_res101unet, napari_res101unet.config, napari_res101unet.registry;"
        "names = ('qtpy', 'PyQt6', 'PyQt5', 'torch', 'napari');"
        "print(sorted(m for m in names if m in sys.modules))"
    )
    assert _run(code) == "[]"


def test_public_api_names_resolve():
    for name in napari_res101unet.__all__:
        assert getattr(napari_res101unet, name) is not None, name
    assert callable(napari_res101unet.segment)


def test_using_the_api_does_not_import_qt():
    code = (
        "import sys, numpy as np, napari_res101unet as nr;"
        "nr.segment(np.zeros((40, 40), np.uint8), lambda x: x[:, :1]);"
        "print('qtpy' in sys.modules, 'PyQt6' in sys.modules)"
    )
    assert _run(code) == "False False"


def test_manifest_is_valid_and_names_the_widgets():
    from npe2 import PluginManifest

    manifest = PluginManifest.from_distribution("napari-res101unet")
    names = {w.display_name for w in manifest.contributions.widgets}
    assert {"Segment", "Train"} <= names
    assert manifest.contributions.readers[0].accepts_directories
    patterns = set(manifest.contributions.readers[0].filename_patterns)
    assert {"*.nii.gz", "*.nrrd", "*.tif", "*.png", "*.dcm"} <= patterns


def test_unknown_attribute_raises_attribute_error():
    import pytest

    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        napari_res101unet.nope  # noqa: B018
