"""Training: fine-tune Res101_UNet on labelled pairs (see :func:`train`).

Modules, in the order a run uses them: :mod:`.run` (:func:`train`, :func:`fit` and
:class:`~.run.TrainRun`), :mod:`.start` (model, data preparation and the
:class:`~.start.TrainPlan`), :mod:`.splits` (validation hold-out), :mod:`.patches` (sampling
and augmentation) with :mod:`.intensity_augment` (window, gamma, contrast), :mod:`.losses`
(the loss table), :mod:`.optim` (AdamW, optimizer state), :mod:`.recipe` (warm-up, cosine,
augmentation ramp and freezing fitted to a time budget), :mod:`.trainer` (the epoch loop),
:mod:`.validation` (scoring the held-out slices) and :mod:`.state` (events and checkpoint
paths). Data left on disk: :mod:`.lazy_pairs` and :mod:`.lazy_index` (foreground index),
read in DataLoader workers by :mod:`.dataset`. Several processes: :mod:`.distributed`
(torchrun world, process group, stop flags), :mod:`.local_ranks` (ranks started here) and
:mod:`.multi_gpu` (the widget's "all GPUs"). Correct and retrain: :mod:`.corrected`
(corrections as training data) and :mod:`.refine` (:func:`~.refine.refine`). Objects:
:mod:`.instance_targets` (what separates touching objects, as training targets) and
:mod:`.instance_pairs` (``instances=True``: pairs made instance targets, class weights). The
pair
rules are :mod:`napari_res101unet.preprocess.pairs` (no torch: napari's process checks
pairs with them).
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
