"""What every export shares: the spec checks and the network that outputs probabilities.

Every exported graph (ONNX, TorchScript, the bioimage.io ``pytorch_state_dict``) maps
**normalised** input ``(B, C, Y, X)`` float32 to **probabilities** ``(B, K, Y, X)``:
softmax over the ``K`` classes (background first), or a sigmoid for a one-class head.
``Y`` and ``X`` must be multiples of 32 (five 2x down-samplings).
"""

from __future__ import annotations

from typing import Any

from ..config import ENCODER_NAME, NORMALIZATIONS


def checked_spec(model: Any):
    """The model's :class:`~napari_res101unet.model.ModelSpec`, checked against its layers.

    Raises
    ------
    TypeError
        When ``model`` carries no spec (a bare smp or other network).
    ValueError
        When the spec is incomplete or disagrees with the network (channels, classes,
        class names, decoder widths).
    """
    from ..model import model_spec

    spec = model_spec(model)
    problems = []
    conv1 = getattr(getattr(model, "encoder", None), "conv1", None)
    head = getattr(model, "segmentation_head", None)
    if conv1 is None or head is None:
        raise ValueError("the model is not an smp Unet (no encoder.conv1/segmentation_head)")
    if conv1.in_channels != spec.in_channels:
        problems.append(f"in_channels {spec.in_channels} != network's {conv1.in_channels}")
    if head[0].out_channels != spec.classes:
        problems.append(f"classes {spec.classes} != network's {head[0].out_channels}")
    if len(spec.class_names) != spec.n_labels or not all(
        isinstance(n, str) and n.strip() for n in spec.class_names
    ):
        problems.append(f"class_names {spec.class_names!r} are not {spec.n_labels} names")
    if problems:
        raise ValueError(f"the model's spec is incomplete or wrong: {'; '.join(problems)}")
    return spec


def resolved_normalization(spec, override: str | dict | None, sample) -> dict:
    """The normalisation to export: ``override``, else the spec's, with ``auto`` resolved
    from ``sample`` (as inference would resolve it for that image).

    Raises
    ------
    ValueError
        For an unknown mode, or ``auto`` with no sample to decide from.
    """
    from ..preprocess.normalize import resolve_mode

    setting = dict(spec.normalization) if override is None else _as_setting(override)
    mode = setting.get("mode")
    if mode not in NORMALIZATIONS:
        raise ValueError(
            f"normalization {mode!r} is not known; allowed: {', '.join(NORMALIZATIONS)}"
        )
    if mode == "auto":
        if sample is None:
            fixed = [m for m in NORMALIZATIONS if m != "auto"]
            raise ValueError(
                "the model's normalization is 'auto' (chosen per image from its dtype), "
                "which an exported model cannot do; pass normalization= one of "
                f"{', '.join(fixed)}, or a sample image of the kind it was trained on"
            )
        setting["mode"] = resolve_mode(setting, sample.dtype, sample.reshape(-1, 1))
    return setting


def _as_setting(value: str | dict) -> dict:
    if isinstance(value, str):
        return {"mode": value}
    if isinstance(value, dict):
        return dict(value)
    raise TypeError(f"normalization must be a mode name or a dict, got {value!r}")


def output_activation(spec) -> str:
    """smp's activation name for the exported head: ``softmax2d`` or ``sigmoid``."""
    return "sigmoid" if spec.classes == 1 else "softmax2d"


def probability_network(model: Any):
    """``model`` followed by its output activation, on the CPU in float32 eval mode.

    The model itself is not changed (a copy is made when it lives elsewhere).
    """
    import copy

    import torch

    spec = checked_spec(model)
    net = model
    if next(model.parameters()).device.type != "cpu" or model.training:
        net = copy.deepcopy(model).cpu()
    net = net.float().eval()
    act = torch.nn.Sigmoid() if spec.classes == 1 else torch.nn.Softmax(dim=1)
    return torch.nn.Sequential(net, act).eval()


def architecture_kwargs(spec) -> dict:
    """Keyword arguments of ``segmentation_models_pytorch.Unet`` that rebuild the network
    (with its probability activation) from a state dict."""
    return {
        "encoder_name": ENCODER_NAME,
        "encoder_weights": None,
        "in_channels": int(spec.in_channels),
        "classes": int(spec.classes),
        "decoder_channels": [int(c) for c in spec.decoder_channels],
        "activation": output_activation(spec),
    }


def export_torchscript(model: Any, path, *, size: int = 64) -> None:
    """Trace the probability network to TorchScript at ``path`` (any spatial size that is
    a multiple of 32 runs; the trace has no shape-dependent branches)."""
    import torch

    spec = checked_spec(model)
    net = probability_network(model)
    example = torch.zeros(1, spec.in_channels, size, size)
    with torch.no_grad():
        traced = torch.jit.trace(net, example, check_trace=False)
    traced.save(str(path))
