from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from napari_res101unet.training.losses import DiceCELoss, dice_ce_loss

IGNORE = 255


def _case(k: int = 3, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, k, 16, 16, generator=g)
    target = torch.randint(0, k, (2, 16, 16), generator=g)
    ignored = torch.rand(2, 16, 16, generator=g) < 0.4
    return logits, target.masked_fill(ignored, IGNORE), ignored


@pytest.mark.parametrize("k", [1, 2, 4])
def test_ignored_pixels_change_neither_loss_nor_gradient(k):
    logits, target, ignored = _case(max(k, 2))
    target = target.clamp(max=k - 1) if k == 1 else target
    target = target.masked_fill(ignored, IGNORE)
    logits = logits[:, :k].clone().requires_grad_(True)
    loss = dice_ce_loss(logits, target, ignore_index=IGNORE)
    loss.backward()
    grad = logits.grad.clone()
    assert torch.all(grad.permute(0, 2, 3, 1)[ignored] == 0)
    assert grad.abs().sum() > 0

    other = logits.detach().clone()
    other.permute(0, 2, 3, 1)[ignored] = 50.0 * torch.randn(int(ignored.sum()), k)
    other.requires_grad_(True)
    loss2 = dice_ce_loss(other, target, ignore_index=IGNORE)
    loss2.backward()
    assert torch.allclose(loss, loss2)
    assert torch.allclose(grad, other.grad)


def test_without_ignore_index_ce_term_is_plain_cross_entropy():
    logits, target, _ = _case(3)
    target = target.clamp(max=2)
    ce_only = dice_ce_loss(logits, target, dice_weight=0.0)
    assert torch.allclose(ce_only, F.cross_entropy(logits, target))


def test_dice_term_matches_hand_computation():
    # two pixels of class 1; prediction puts probability 0.5 on each of 4 pixels
    logits = torch.zeros(1, 2, 2, 2)
    target = torch.tensor([[[1, 1], [0, 0]]])
    loss = dice_ce_loss(logits, target, ce_weight=0.0, smooth=0.0)
    # dice = 2 * (0.5 + 0.5) / (4 * 0.5 + 2) = 0.5
    assert loss.item() == pytest.approx(0.5)


def test_perfect_prediction_has_near_zero_loss():
    target = torch.randint(0, 3, (2, 8, 8), generator=torch.Generator().manual_seed(1))
    logits = 30.0 * F.one_hot(target, 3).permute(0, 3, 1, 2).float()
    assert dice_ce_loss(logits, target).item() < 1e-6


def test_all_pixels_ignored_gives_zero_loss_and_finite_gradient():
    logits = torch.randn(1, 2, 4, 4, requires_grad=True)
    target = torch.full((1, 4, 4), -1)
    loss = dice_ce_loss(logits, target, ignore_index=-1)
    loss.backward()
    assert loss.item() == 0.0
    assert torch.all(logits.grad == 0)


def test_module_and_argument_checks():
    logits, target, _ = _case(2)
    module = DiceCELoss(ignore_index=IGNORE)
    assert torch.allclose(module(logits, target), dice_ce_loss(logits, target, ignore_index=255))
    with pytest.raises(ValueError, match="logits must be"):
        dice_ce_loss(logits, target[:, :4])
    with pytest.raises(ValueError, match="dice_weight must be >= 0"):
        DiceCELoss(dice_weight=-1)


def test_a_loss_is_a_setting_named_from_a_table():
    from napari_res101unet.config import LOSSES, TrainSettings
    from napari_res101unet.training.losses import make_loss

    assert {"dice_ce", "dice", "focal", "tversky"} <= set(LOSSES)
    with pytest.raises(ValueError, match="loss must be one of dice_ce, dice, focal, tversky"):
        TrainSettings(loss="hinge")
    with pytest.raises(ValueError, match="loss must be one of"):
        make_loss("hinge", 2, IGNORE)
    import segmentation_models_pytorch as smp

    kinds = {"dice": smp.losses.DiceLoss, "focal": smp.losses.FocalLoss,
             "tversky": smp.losses.TverskyLoss, "dice_ce": DiceCELoss}  # fmt: skip
    for name, kind in kinds.items():
        assert isinstance(make_loss(name, 2, IGNORE), kind), name


@pytest.mark.parametrize("name", ["dice", "focal", "tversky"])
@pytest.mark.parametrize("k", [1, 3])
def test_every_loss_leaves_ignored_pixels_out(name, k):
    from napari_res101unet.training.losses import make_loss

    logits, target, ignored = _case(max(k, 2))
    if k == 1:
        target = target.clamp(max=1).masked_fill(ignored, IGNORE)
    logits = logits[:, :k].clone().requires_grad_(True)
    loss = make_loss(name, k, IGNORE)(logits, target)
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.all(logits.grad.permute(0, 2, 3, 1)[ignored] == 0)
    assert logits.grad.abs().sum() > 0
