"""The pieces of a bioimage.io model description (spec 0.5) for a Res101_UNet.

Plain dicts in the YAML layout of ``rdf.yaml``; :mod:`.bioimageio` writes and validates
them with ``bioimageio.spec``.
"""

from __future__ import annotations

import re

import numpy as np

from ..config import NETWORK_MULTIPLE, PERCENTILES

INPUT_ID = "raw"
OUTPUT_ID = "probabilities"

CITATIONS = [
    {
        "text": "Ronneberger, Fischer & Brox. U-Net: Convolutional Networks for Biomedical "
        "Image Segmentation. MICCAI 2015.",
        "doi": "10.1007/978-3-319-24574-4_28",
    },
    {
        "text": "He, Zhang, Ren & Sun. Deep Residual Learning for Image Recognition. CVPR 2016.",
        "doi": "10.1109/CVPR.2016.90",
    },
    {
        "text": "Iakubovskii. Segmentation Models Pytorch (segmentation_models.pytorch).",
        "url": "https://github.com/qubvel-org/segmentation_models.pytorch",
    },
]

EXACT = {
    "imagenet": "exact: a fixed linear map",
    "window": "exact: a fixed intensity window, clipped",
    "none": "exact: no normalisation",
    "minmax": (
        "per image; napari-res101unet takes the minimum and maximum over a whole 3D "
        "stack (and over a strided sample of large images), bioimage.io over each 2D input"
    ),
    "percentile": (
        "per image; napari-res101unet takes the percentiles over a whole 3D stack and "
        "over a strided sample of at most a few million pixels, bioimage.io over each 2D "
        "input, so large images and volumes get slightly different bounds"
    ),
}


def channel_ids(names: list[str], prefix: str) -> list[str]:
    """Identifier-safe, unique channel names (the originals stay in the config)."""
    out: list[str] = []
    for i, name in enumerate(names):
        ident = re.sub(r"\W+", "_", str(name)).strip("_") or f"{prefix}{i}"
        if ident[0].isdigit():
            ident = f"{prefix}_{ident}"
        while ident in out:
            ident = f"{ident}_{i}"
        out.append(ident)
    return out


def preprocessing(norm, setting: dict) -> list[dict]:
    """bioimage.io operators equal to a :class:`~napari_res101unet.data.Normalizer`.

    Parameters
    ----------
    norm : Normalizer
        Built by ``make_normalizer`` for the export's (resolved) normalisation.
    setting : dict
        That normalisation (``mode`` and its optional ``percentiles``).
    """
    ops: list[dict] = []
    if norm.mode in ("percentile", "minmax"):
        percentiles = setting.get("percentiles", PERCENTILES)
        lo_p, hi_p = percentiles if norm.mode == "percentile" else (0.0, 100.0)
        ops.append(
            {
                "id": "scale_range",
                "kwargs": {
                    "axes": ["y", "x"],
                    "min_percentile": float(lo_p),
                    "max_percentile": float(hi_p),
                    "eps": 1e-6,
                },
            }
        )
    elif norm.mode != "none":
        gain = 1.0 / np.maximum(norm.high - norm.low, 1e-12)
        ops.append({"id": "scale_linear", "kwargs": _along(gain, -norm.low * gain, "gain")})
    if norm.clip:
        ops.append({"id": "clip", "kwargs": {"min": 0.0, "max": 1.0}})
    if norm.mode != "none":
        ops.append(
            {
                "id": "fixed_zero_mean_unit_variance",
                "kwargs": _along(norm.mean, norm.std, "mean", "std"),
            }
        )
    ops.append({"id": "ensure_dtype", "kwargs": {"dtype": "float32"}})
    return ops


def _along(first, second, key1: str, key2: str = "offset") -> dict:
    """Scalar kwargs when every channel shares the value, per-channel lists otherwise."""
    a, b = np.atleast_1d(first).astype(float), np.atleast_1d(second).astype(float)
    if np.all(a == a[0]) and np.all(b == b[0]):
        return {key1: float(a[0]), key2: float(b[0])}
    return {"axis": "channel", key1: a.tolist(), key2: b.tolist()}


def input_tensor(spec, ops: list[dict]) -> dict:
    """The raw input tensor: ``(batch, channel, y, x)``, ``y``/``x`` multiples of 32."""
    size = {"min": NETWORK_MULTIPLE, "step": NETWORK_MULTIPLE}
    return {
        "id": INPUT_ID,
        "description": "raw image intensities (channels first); see the preprocessing",
        "axes": [
            {"type": "batch"},
            {"type": "channel", "channel_names": channel_ids(_in_names(spec), "c")},
            {"type": "space", "id": "y", "size": size},
            {"type": "space", "id": "x", "size": size},
        ],
        "test_tensor": {"source": "test_input.npy"},
        "sample_tensor": {"source": "sample_input.tif"},
        "data": {"type": "float32"},
        "preprocessing": ops,
    }


def output_tensor(spec) -> dict:
    """Probabilities ``(batch, channel, y, x)``, one channel per class, same size as input."""
    what = "sigmoid foreground probability" if spec.classes == 1 else "softmax over classes"
    return {
        "id": OUTPUT_ID,
        "description": f"class probabilities ({what}); argmax over channels gives labels",
        "axes": [
            {"type": "batch"},
            {"type": "channel", "channel_names": channel_ids(_out_names(spec), "class")},
            {"type": "space", "id": "y", "size": {"tensor_id": INPUT_ID, "axis_id": "y"}},
            {"type": "space", "id": "x", "size": {"tensor_id": INPUT_ID, "axis_id": "x"}},
        ],
        "test_tensor": {"source": "test_output.npy"},
        "sample_tensor": {"source": "sample_output.tif"},
        "data": {"type": "float32", "range": [0.0, 1.0]},
    }


def _in_names(spec) -> list[str]:
    if spec.in_channels == 3:
        return ["red", "green", "blue"]
    return [f"c{i}" for i in range(spec.in_channels)]


def _out_names(spec) -> list[str]:
    return spec.class_names[1:2] if spec.classes == 1 else list(spec.class_names)
