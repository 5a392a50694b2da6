"""napari-res101unet: Res101_UNet segmentation and fine-tuning, in napari and headless.

The public API is importable without Qt, and torch is only imported when a function that
needs it is first used (napari starts fast and the plugin manifest loads instantly)::

    import napari_res101unet as nr
    model = nr.load_model("liver.safetensors")
    labels = nr.segment(image, model)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._lazy import lazy_attributes

__version__ = "0.1.0"

_EXPORTS = {
    "build_model": "model",
    "ModelSpec": "model",
    "save_model": "checkpoint",
    "load_model": "checkpoint",
    "CheckpointError": "errors",
    "Cancelled": "errors",
    "segment": "inference.segment",
    "run_segmentation": "inference.segment",
    "SegmentationResult": "inference.segment",
    "plan_tiles": "inference.tiling",
    "TilePlan": "inference.tiling",
    "resolve_device": "device",
    "available_devices": "device",
    "iou": "evaluation",
    "dice": "evaluation",
    "pixel_accuracy": "evaluation",
    "train": "training.run",
    "TrainingEvent": "training.state",
    "evaluate": "evaluation",
    "read_image": "io",
    "write_image": "io",
    "write_labels": "io",
    "ImageData": "io",
    "load_sample": "samples",
    "SegmentSettings": "config",
    "TrainSettings": "config",
    "SEGMENT_DEFAULTS": "config",
    "TRAIN_DEFAULTS": "config",
    "models_dir": "config",
    "segment_layer": "viewer",
    "train_from_layers": "viewer",
    "rank_uncertain": "inference.uncertainty",
    "refine": "training.refine",
    "refine_layer": "viewer",
    "RefineResult": "training.refine",
}

__all__ = ["__version__", *_EXPORTS]
_lazy_getattr = lazy_attributes(__name__, _EXPORTS)


def __getattr__(name: str) -> Any:
    value = _lazy_getattr(name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:  # pragma: no cover
    from .checkpoint import load_model, save_model
    from .config import (
        SEGMENT_DEFAULTS,
        TRAIN_DEFAULTS,
        SegmentSettings,
        TrainSettings,
        models_dir,
    )
    from .device import available_devices, resolve_device
    from .errors import Cancelled, CheckpointError
    from .evaluation.pixel import dice, iou, pixel_accuracy
    from .evaluation.score_model import evaluate
    from .inference.segment import SegmentationResult, run_segmentation, segment
    from .inference.tiling import TilePlan, plan_tiles
    from .inference.uncertainty import rank_uncertain
    from .io import ImageData, read_image, write_image, write_labels
    from .model import ModelSpec, build_model
    from .samples import load_sample
    from .training.refine import RefineResult, refine
    from .training.run import train
    from .training.state import TrainingEvent
    from .viewer import refine_layer, segment_layer, train_from_layers
