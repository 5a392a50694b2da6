"""Validation during training: a model scored on the used slices of prepared images."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from ..config import TRAIN_LIMITS
from ..evaluation.pixel import confusion_matrix, scores_from_confusion
from ..inference.segment import run_segmentation
from ..inference.tiling import round_up
from ..model import model_spec
from ..preprocess.pairs import IGNORE, Prepared


def score_prepared(
    model: torch.nn.Module,
    items: list[Prepared],
    *,
    device: torch.device,
    batch_size: int,
    mixed_precision: bool,
    should_stop: Callable[[], bool] | None = None,
    reduce: Callable[[np.ndarray], np.ndarray] | None = None,
) -> dict[str, Any]:
    """Scores of ``model`` on the used slices of prepared images (validation in training).

    ``reduce`` maps the ``(K, K)`` confusion matrix before scoring (distributed
    training sums the ranks' shares).

    Each whole slice is normalised with its image's normaliser (as in training and
    inference) and predicted in one pass, or in tiles of ``TRAIN_LIMITS["val_tile"]`` for
    large slices. The model is left in the train/eval mode it was in.
    """
    n = model_spec(model).n_labels
    total = np.zeros((n, n), np.int64)
    was_training = model.training
    model.eval()

    def predictor(x: torch.Tensor) -> torch.Tensor:
        return model(x)

    try:
        for item in items:
            for s in item.slices:
                x = np.moveaxis(item.normalizer(item.data[s]), 0, -1)
                tile = min(round_up(max(x.shape[:2])), TRAIN_LIMITS["val_tile"])
                labels = run_segmentation(
                    x,
                    predictor,
                    tile_size=tile,
                    batch_size=batch_size,
                    device=device,
                    channel_axis=-1,
                    normalization="none",
                    should_stop=should_stop,
                    mixed_precision=mixed_precision,
                ).labels
                total += confusion_matrix(labels, item.labels[s], n, ignore_index=IGNORE)
    finally:
        model.train(was_training)
    if reduce is not None:
        total = reduce(total)
    return scores_from_confusion(total)
