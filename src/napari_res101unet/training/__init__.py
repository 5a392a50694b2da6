"""Training: fine-tune Res101_UNet on labelled pairs (see :func:`train`).

Modules, in the order a run uses them: :mod:`.pairs` (data rules, numpy only),
:mod:`.start` (model, data preparation and the :class:`~.start.TrainPlan`), :mod:`.splits`
(validation hold-out), :mod:`.patches` (sampling and augmentation), :mod:`.losses`,
:mod:`.optim` (AdamW, schedule, optimizer state), :mod:`.trainer` (the epoch loop),
:mod:`.state` (events and checkpoint paths) and :mod:`.run` (:func:`train`, :func:`fit`).
``pairs`` imports no torch, so napari's process can check pairs with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_attributes

_LAZY = {
    "train": "run",
    "fit": "run",
    "TrainingEvent": "state",
    "CheckpointPaths": "state",
    "TrainPlan": "start",
}
__all__ = list(_LAZY)


__getattr__ = lazy_attributes(__name__, _LAZY)

if TYPE_CHECKING:  # pragma: no cover
    from .run import fit, train
    from .start import TrainPlan
    from .state import CheckpointPaths, TrainingEvent
