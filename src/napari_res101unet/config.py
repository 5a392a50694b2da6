"""Defaults shared by the Python API, the CLI and the widgets (one source of truth).

Nothing here imports torch or Qt, so widgets can read the defaults while napari starts.
"""

from __future__ import annotations

import os
from pathlib import Path

ARCHITECTURE = "Res101_UNet"
"""Name written into every checkpoint; a file naming another architecture is refused."""

ENCODER_NAME = "resnet101"
"""The segmentation-models-pytorch encoder behind Res101_UNet."""

NETWORK_MULTIPLE = 32
"""Spatial sizes fed to the network are padded to a multiple of this (5 down-samplings)."""

CHECKPOINT_FORMAT = 1
"""Version of the checkpoint JSON; bumped when its meaning changes."""

DEVICES = ("auto", "cpu", "cuda", "mps")
"""Device names accepted everywhere (``cuda:N`` too)."""

NORMALIZATIONS = ("auto", "imagenet", "percentile", "window", "minmax", "none")
"""Input normalisations a model spec may name (see :mod:`napari_res101unet.data`)."""

SEGMENT_DEFAULTS: dict = {
    "tile_size": None,  # None: planned from the device's memory and the image size
    "overlap": 0.25,  # fraction of the tile shared with its neighbour
    "batch_size": None,  # None: planned
    "device": "auto",
    "tta": False,
    "threshold": 0.5,
    "blending": "gaussian",
}

TRAIN_DEFAULTS: dict = {
    "epochs": 30,
    "patch_size": 256,  # a multiple of NETWORK_MULTIPLE
    "batch_size": 4,
    "learning_rate": None,  # None: LEARNING_RATES by start; cosine to 1/100 after warmup
    "encoder_learning_rate_factor": 0.1,  # encoder lr = learning_rate * this, once unfrozen
    "freeze_encoder_epochs": 2,  # only when the encoder starts from trained weights
    "weight_decay": 1e-4,
    "val_fraction": 0.2,
    "steps_per_epoch": None,  # None: about one pass over the pixels of the training images
    "foreground_fraction": 0.5,  # share of patches centred on a labelled object
    "augment": True,
    "early_stopping": 10,  # epochs without a better validation IoU; None: never
    "max_minutes": None,  # wall-clock budget; None: no limit
    "ignore_index": None,  # label value of unlabelled pixels (sparse annotation)
    "mixed_precision": True,  # on CUDA only
    "seed": 0,
}

LEARNING_RATES: dict = {"pretrained": 3e-4, "random": 1e-3}
"""Automatic learning rate: fine-tuning trained weights takes smaller steps than training a
randomly initialised network (on the bundled liver sample, 80 steps from random weights
reached held-out IoU 0.79 at 1e-3 against 0.59 at 3e-4)."""

TRAIN_LIMITS: dict = {
    "min_steps_per_epoch": 16,
    "max_warmup_steps": 50,  # warmup: 5 % of the steps, at most one epoch and this
    "max_steps_per_epoch": 1000,
    "max_auto_classes": 16,  # more label values than this needs classes= given explicitly
    "max_val_slices": 64,  # validation scores at most this many slices (evenly spread)
    "val_tile": 1024,  # validation slices larger than this are tiled
}
"""Bounds the training engine applies to the automatic choices above."""

CT_WINDOW = (-160.0, 240.0)
"""Hounsfield window (soft tissue, abdomen) used for int16 CT under ``auto`` normalisation."""

PERCENTILES = (1.0, 99.8)
"""Lower/upper percentiles used for microscopy-style normalisation."""

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


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
