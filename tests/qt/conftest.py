"""Qt tests (napari viewers under Xvfb).

Under Xvfb/Mesa, importing torchvision (pulled in by segmentation_models_pytorch) after a
napari viewer exists segfaults the process. These tests are collected before the engine
tests in a full run, so torchvision is loaded here, before any viewer is made.
"""

from __future__ import annotations

import contextlib

with contextlib.suppress(ImportError):
    import torchvision  # noqa: F401
