"""Run the widget tests (tests/qt) in a fresh interpreter.

They must see a napari process exactly as a user's: one that has never imported torch.
This pytest process has (the engine tests import it), and under Mesa OpenGL a napari
viewer plus torchvision in one process segfaults, so the widget tests cannot share it.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import QT_TESTS, REPO

pytestmark = pytest.mark.slow


def test_widget_suite_in_a_torch_free_napari_process():
    pytest.importorskip("pytestqt")
    env = dict(os.environ)
    env.pop("PYTEST_ADDOPTS", None)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", str(QT_TESTS), "-q", "-p", "no:cacheprovider", "-rfEs"],
        cwd=REPO,
        env=env,
        capture_output=True,
        encoding="utf-8",
        errors="replace",
        timeout=1800,
    )
    tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-40:])
    print(tail)
    assert proc.returncode == 0, f"widget tests failed (exit {proc.returncode}):\n{tail}"
    assert " passed" in tail
