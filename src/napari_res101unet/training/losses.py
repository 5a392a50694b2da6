"""Training losses, chosen by name (``TrainSettings.loss``, table :data:`~napari_res101unet.
config.LOSSES`): ours, ``dice_ce``, and segmentation-models-pytorch's where smp has one.

Every loss leaves unlabelled pixels out: sparse annotations (a few strokes painted in
napari) mark the pixels nobody labelled with ``ignore_index``; those pixels contribute
nothing to the loss and receive no gradient, whatever the network predicts there.
:func:`make_loss` builds a loss for a head of ``K`` outputs: ``K == 1`` is a sigmoid head
(smp's binary mode), ``K >= 2`` a softmax head over classes (smp's multiclass mode, Dice
and Tversky over the foreground classes as ``dice_ce``'s Dice is).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def dice_ce_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    ignore_index: int | None = None,
    dice_weight: float = 1.0,
    ce_weight: float = 1.0,
    smooth: float = 1.0,
    class_weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Cross-entropy plus soft Dice of the foreground classes, over labelled pixels only.

    Parameters
    ----------
    logits : (B, K, Y, X) tensor
        Raw network output. ``K == 1`` is a sigmoid head (binary target 0/1); ``K >= 2``
        is a softmax head over classes ``0..K-1``.
    target : (B, Y, X) integer tensor
        Class index per pixel, or ``ignore_index`` for unlabelled pixels.
    ignore_index : int, optional
        Label value left out of both terms. None: every pixel counts.
    dice_weight, ce_weight : float
        Weights of the two terms.
    smooth : float
        Added to the Dice numerator and denominator (stabilises empty classes).
    class_weights : (K,) tensor, optional
        Softmax heads: the cross-entropy weight of each class (the mean is then weighted:
        ``sum(w[y] * ce) / sum(w[y])``, as torch's ``cross_entropy(weight=...)``). The Dice
        term is an average over classes already, whatever their size.

    Returns
    -------
    () tensor
        ``ce_weight * CE + dice_weight * (1 - mean Dice)``. The cross-entropy is the
        (weighted) mean over labelled pixels; the Dice is computed over the whole batch
        per foreground class and averaged over the classes present in ``target`` (0 when
        none is present).
        A batch without labelled pixels gives 0 (with a zero gradient).

    Raises
    ------
    ValueError
        When the shapes of ``logits`` and ``target`` do not match.
    """
    if logits.ndim != 4 or target.shape != (logits.shape[0], *logits.shape[2:]):
        raise ValueError(
            f"logits must be (B, K, Y, X) and target (B, Y, X); got {tuple(logits.shape)} "
            f"and {tuple(target.shape)}"
        )
    logits = logits.float()
    target = target.long()
    if ignore_index is None:
        valid = torch.ones_like(target, dtype=torch.bool)
    else:
        valid = target != ignore_index
    target = torch.where(valid, target, torch.zeros_like(target))
    weight = valid.to(logits.dtype)
    n_valid = weight.sum().clamp(min=1.0)
    if logits.shape[1] == 1:
        ce_map = F.binary_cross_entropy_with_logits(
            logits[:, 0], target.to(logits.dtype), reduction="none"
        )
        probs = torch.sigmoid(logits)
        onehot = target[:, None].to(logits.dtype)
    else:
        ce_map = F.cross_entropy(logits, target, reduction="none")
        probs = torch.softmax(logits, dim=1)[:, 1:]
        onehot = F.one_hot(target, logits.shape[1]).permute(0, 3, 1, 2)[:, 1:].to(logits.dtype)
        if class_weights is not None:
            pixel = class_weights.to(logits.device, logits.dtype)[target] * weight
            ce = (ce_map * pixel).sum() / pixel.sum().clamp(min=1e-12)
            return ce_weight * ce + dice_weight * _dice_term(probs, onehot, weight, smooth)
    ce = (ce_map * weight).sum() / n_valid
    return ce_weight * ce + dice_weight * _dice_term(probs, onehot, weight, smooth)


def _dice_term(
    probs: torch.Tensor, onehot: torch.Tensor, weight: torch.Tensor, smooth: float
) -> torch.Tensor:
    """``1 - mean Dice`` over the foreground classes present; ``(B, K', Y, X)`` inputs."""
    mask = weight[:, None]
    probs, onehot = probs * mask, onehot * mask
    dims = (0, 2, 3)
    intersection = (probs * onehot).sum(dims)
    cardinality = probs.sum(dims) + onehot.sum(dims)
    dice = (2.0 * intersection + smooth) / (cardinality + smooth)
    present = onehot.sum(dims) > 0
    if not bool(present.any()):
        return probs.sum() * 0.0
    return (1.0 - dice)[present].mean()


class DiceCELoss(torch.nn.Module):
    """:func:`dice_ce_loss` as a module (see there for the parameters)."""

    def __init__(
        self,
        *,
        ignore_index: int | None = None,
        dice_weight: float = 1.0,
        ce_weight: float = 1.0,
        smooth: float = 1.0,
        class_weights: list[float] | None = None,
    ) -> None:
        super().__init__()
        for name, value in (("dice_weight", dice_weight), ("ce_weight", ce_weight)):
            if not value >= 0:
                raise ValueError(f"{name} must be >= 0, got {value!r}")
        if not smooth >= 0:
            raise ValueError(f"smooth must be >= 0, got {smooth!r}")
        self.ignore_index = ignore_index
        self.dice_weight, self.ce_weight, self.smooth = dice_weight, ce_weight, smooth
        weights = None
        if class_weights is not None:
            weights = torch.as_tensor(class_weights, dtype=torch.float32)
            if weights.ndim != 1 or not bool((weights > 0).all()):
                raise ValueError(f"class_weights must be positive numbers, got {class_weights!r}")
        self.register_buffer("class_weights", weights, persistent=False)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return dice_ce_loss(
            logits,
            target,
            ignore_index=self.ignore_index,
            dice_weight=self.dice_weight,
            ce_weight=self.ce_weight,
            smooth=self.smooth,
            class_weights=self.class_weights,
        )


TVERSKY_ALPHA, TVERSKY_BETA = 0.3, 0.7
"""Weights of false positives and false negatives in the Tversky index (beta > alpha: a
missed pixel costs more, which favours small structures; 0.5/0.5 is the Dice loss)."""
FOCAL_GAMMA = 2.0


def make_loss(
    name: str, outputs: int, ignore_index: int | None, class_weights: list[float] | None = None
) -> torch.nn.Module:
    """The loss ``name`` for a head of ``outputs`` channels.

    ``class_weights`` (one per output class, softmax heads) weigh the cross-entropy of
    ``dice_ce``; smp's Dice and Tversky losses average over classes already (a thin class
    counts as much as a large one) and its focal loss down-weights easy pixels itself, so
    they take none.

    Raises
    ------
    ValueError
        For a name not in :data:`~napari_res101unet.config.LOSSES` (the message lists them).
    """
    from ..config import LOSSES

    if name not in LOSSES:
        raise ValueError(f"loss must be one of {', '.join(LOSSES)}; got {name!r}")
    if class_weights is not None and len(class_weights) != outputs:
        raise ValueError(f"{len(class_weights)} class_weights for a head of {outputs} outputs")
    if name == "dice_ce":
        return DiceCELoss(ignore_index=ignore_index, class_weights=class_weights)
    from segmentation_models_pytorch import losses

    mode = losses.BINARY_MODE if outputs == 1 else losses.MULTICLASS_MODE
    classes = None if outputs == 1 else list(range(1, outputs))
    if name == "focal":
        return losses.FocalLoss(mode, gamma=FOCAL_GAMMA, ignore_index=ignore_index)
    if name == "tversky":
        return losses.TverskyLoss(
            mode, classes=classes, alpha=TVERSKY_ALPHA, beta=TVERSKY_BETA,
            ignore_index=ignore_index,
        )  # fmt: skip
    return losses.DiceLoss(mode, classes=classes, ignore_index=ignore_index)
