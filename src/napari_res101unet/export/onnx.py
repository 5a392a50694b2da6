"""ONNX export: dynamic batch and spatial axes, probabilities out.

The graph takes the **normalised** network input ``input: (B, C, Y, X)`` float32 (``Y``,
``X`` any multiples of 32) and returns ``probabilities: (B, K, Y, X)`` (softmax over the
classes, background first; a sigmoid for a one-class head). The normalisation the
checkpoint records, the class names and the whole spec travel in the model's
``metadata_props`` (``napari_res101unet.spec``, ``...normalization``, ``...class_names``).
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

from ._network import checked_spec, probability_network

OPSET = 18
"""ONNX opset written: the lowest that torch's exporter emits, run by onnxruntime >= 1.14."""

INPUT_NAME = "input"
OUTPUT_NAME = "probabilities"
_MAX_SIDE = 2**16


def export_onnx(model: Any, path: str | os.PathLike, *, opset: int = OPSET) -> Path:
    """Write the probability network of ``model`` to the ONNX file ``path``.

    Parameters
    ----------
    model : torch.nn.Module
        A Res101_UNet with its spec (from ``build_model``/``load_model``/``train``).
    path : path
        The ``.onnx`` file (overwritten: the caller decides about existing files).
    opset : int
        ONNX opset version (18 or newer).

    Returns
    -------
    Path
        ``path``.
    """
    import onnx
    import torch

    if not isinstance(opset, int) or opset < OPSET:
        raise ValueError(f"opset must be an int >= {OPSET}, got {opset!r}")
    spec = checked_spec(model)
    net = probability_network(model)
    example = torch.zeros(1, spec.in_channels, 64, 64)
    batch = torch.export.Dim("batch", min=1, max=4096)
    height = torch.export.Dim("y32", min=1, max=_MAX_SIDE // 32)
    width = torch.export.Dim("x32", min=1, max=_MAX_SIDE // 32)
    path = Path(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            net,
            (example,),
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_shapes={"input": {0: batch, 2: 32 * height, 3: 32 * width}},
            opset_version=opset,
            dynamo=True,
            external_data=False,
            verbose=False,
        )
    proto = program.model_proto
    _rename_dims(proto)
    for key, value in _metadata(spec).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.doc_string = (
        "Res101_UNet (smp Unet, ResNet-101 encoder): normalised (B, C, Y, X) float32 in, "
        "Y and X multiples of 32; class probabilities (B, K, Y, X) out."
    )
    onnx.save_model(proto, str(path))
    return path


def _rename_dims(proto) -> None:
    """Readable symbolic dimension names (``batch``, ``y``, ``x``) on input and output."""
    for value in (*proto.graph.input, *proto.graph.output):
        dims = value.type.tensor_type.shape.dim
        for dim, name in zip(dims, ("batch", None, "y", "x")):
            if name and dim.dim_param:
                dim.dim_param = name


def _metadata(spec) -> dict[str, str]:
    from .. import __version__

    return {
        "napari_res101unet.version": __version__,
        "napari_res101unet.spec": json.dumps(spec.to_dict()),
        "napari_res101unet.normalization": json.dumps(spec.normalization),
        "napari_res101unet.class_names": json.dumps(spec.class_names),
        "napari_res101unet.output": "probabilities",
    }
