"""Settings shared by the Python API, the CLI and the widgets: the one source of defaults.

Each kind of run has one frozen dataclass, validated once when made (a value is changed
only with :func:`dataclasses.replace`, which validates again), and it travels whole from
the widget, the CLI or the API to the code that uses it:

- :class:`SegmentSettings`: how an image is segmented (tiles, blending, threshold...);
- :class:`BlockwiseSettings`: how an image larger than memory is cut into blocks;
- :class:`ClusterSettings`: which dask cluster runs blocks or files;
- :class:`CohortSettings`: what ``segment`` over many files writes, resumes or skips;
- :class:`TrainSettings`: what a training run is asked to do;
- :class:`RefineSettings`: one turn of correct-and-retrain.

Modules: :mod:`.segment` and :mod:`.train` (the dataclasses), :mod:`.constants` (the
architecture, formats and the bounds of automatic choices) and :mod:`.checks` (field
validation, and :func:`settings_with`: how an entry point builds its settings object from
a given one and keyword arguments). Each field's ``metadata["help"]`` is the text the CLI
shows and the API reference prints. Nothing here imports torch or Qt, so widgets read the
defaults while napari starts.
"""

from __future__ import annotations

import os
from pathlib import Path

from .checks import settings_with, split_fields
from .constants import *  # noqa: F403  (the constants are part of this package's API)
from .constants import __all__ as _CONSTANTS
from .segment import (
    SEGMENT_DEFAULTS,
    BlockwiseSettings,
    ClusterSettings,
    CohortSettings,
    SegmentSettings,
)
from .train import TRAIN_DEFAULTS, RefineSettings, TrainSettings

__all__ = [
    *_CONSTANTS,
    "SEGMENT_DEFAULTS",
    "TRAIN_DEFAULTS",
    "BlockwiseSettings",
    "ClusterSettings",
    "CohortSettings",
    "RefineSettings",
    "SegmentSettings",
    "TrainSettings",
    "models_dir",
    "settings_with",
    "split_fields",
]


def models_dir() -> Path:
    """Folder where the plugin looks for and stores models.

    ``$NAPARI_RES101UNET_MODELS`` when set, else the user's data folder
    (``~/.local/share/napari-res101unet/models`` on Linux).
    """
    env = os.environ.get("NAPARI_RES101UNET_MODELS")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("napari-res101unet", appauthor=False)) / "models"
