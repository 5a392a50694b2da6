"""Models for the export tests: calibrated batch norms, and a small stand-in smp Unet."""

from __future__ import annotations

import copy
import functools

import torch

from napari_res101unet.model import ModelSpec


def calibrated(model, channels: int):
    """Give random BatchNorm statistics realistic values (as training would), so that the
    probabilities are not saturated at 0/1 and the comparison means something."""
    torch.manual_seed(0)
    model.train()
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None
    with torch.no_grad():
        for _ in range(2):
            model(torch.randn(2, channels, 64, 64))
    return model.eval()


def small_unet(in_channels: int = 1, classes: int = 3):
    """A fresh copy of :func:`_small_unet` (tests may change its spec)."""
    return copy.deepcopy(_small_unet(in_channels, classes))


@functools.lru_cache(maxsize=4)
def _small_unet(in_channels: int, classes: int):
    """A small smp Unet (ResNet-18 encoder, narrow decoder) carrying a Res101_UNet spec:
    the export code sees the same module layout, in a fraction of the time."""
    import segmentation_models_pytorch as smp

    torch.manual_seed(0)
    decoder = [32, 16, 16, 16, 16]
    net = smp.Unet("resnet18", encoder_weights=None, in_channels=in_channels,
                   classes=classes, decoder_channels=decoder)  # fmt: skip
    net.spec = ModelSpec(
        in_channels=in_channels, classes=classes,
        class_names=["background", "liver", "tumour"][: max(classes, 2)],
        normalization={"mode": "window", "window": [-160, 240]}, decoder_channels=decoder,
    )  # fmt: skip
    return calibrated(net, in_channels)
