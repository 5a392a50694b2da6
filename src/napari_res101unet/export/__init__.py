"""Models that travel: ONNX, TorchScript and bioimage.io packages of a Res101_UNet.

``export_model(model, path, format=...)`` is the one entry point (the CLI's ``export``
calls it). Importing this package is light; torch, onnx and bioimageio are imported by the
functions that need them (they live in the ``export`` extra).

Modules: :mod:`._network` (the exported network: normalised input to probabilities),
:mod:`.onnx`, :mod:`.bioimageio` (the package writer; reading one is
:mod:`napari_res101unet.io.bioimageio`), :mod:`._rdf` (its description), :mod:`._docs` (its
documentation page) and :mod:`._sample` (its test image).

Every format outputs **probabilities** ``(B, K, Y, X)``: softmax over the classes
(background first), or a sigmoid for a one-class head; see :mod:`._network`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

FORMATS = ("onnx", "bioimageio", "torchscript")
_SUFFIX = {"onnx": ".onnx", "torchscript": ".pt"}

__all__ = ["FORMATS", "export_model"]


def export_model(
    model: Any,
    path: str | os.PathLike,
    format: str = "onnx",
    *,
    overwrite: bool = False,
    **options: Any,
) -> Path:
    """Export a Res101_UNet to ``path`` in ``format``.

    Parameters
    ----------
    model : torch.nn.Module
        A Res101_UNet with its spec (from ``build_model``, ``load_model`` or ``train``).
    path : path
        ``onnx``: a ``.onnx`` file; ``torchscript``: a ``.pt`` file (the suffix is added
        when missing); ``bioimageio``: a folder, or a ``.zip`` file.
    format : {"onnx", "bioimageio", "torchscript"}
        ONNX and TorchScript take the *normalised* input ``(B, C, Y, X)`` float32; a
        bioimage.io package takes raw intensities and describes the normalisation.
    overwrite : bool
        Replace an existing ``path``; otherwise a FileExistsError is raised.
    **options
        ``onnx``: ``opset``. ``bioimageio``: ``normalization``, ``sample``, ``weights``,
        ``name``, ``description``, ``authors``, ``license`` (see
        :func:`napari_res101unet.export.bioimageio.export_bioimageio`).

    Returns
    -------
    Path
        What was written.

    Raises
    ------
    ValueError
        For an unknown format or option, or a model whose spec is incomplete (e.g. an
        ``auto`` normalisation with nothing to resolve it for a bioimage.io package).
    TypeError
        For a model that carries no Res101_UNet spec (or a path instead of a model).
    FileExistsError
        When ``path`` exists and ``overwrite`` is False.
    """
    if format not in FORMATS:
        raise ValueError(f"unknown export format {format!r}; allowed: {', '.join(FORMATS)}")
    allowed = _OPTIONS[format]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(
            f"{format} export takes no option(s) {unknown}; "
            f"allowed: {', '.join(allowed) or 'none'}"
        )
    path = _target(Path(path).expanduser(), format)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True (CLI: --overwrite)")
    if isinstance(model, (str, os.PathLike)):
        raise TypeError(
            f"model must be a loaded Res101_UNet, got the path {str(model)!r}; "
            "pass napari_res101unet.load_model(path)"
        )
    return _EXPORTERS[format](model, path, **options)


_OPTIONS = {
    "onnx": ("opset",),
    "torchscript": (),
    "bioimageio": (
        "normalization", "sample", "weights", "name", "description", "authors", "license",
        "validate",
    ),
}  # fmt: skip


def _target(path: Path, format: str) -> Path:
    suffix = _SUFFIX.get(format)
    if suffix and path.suffix.lower() != suffix:
        path = path.with_name(path.name + suffix)
    if path.is_dir() and format != "bioimageio":
        raise ValueError(f"{path} is a folder; {format} export writes a file")
    return path


def _onnx(model: Any, path: Path, **options: Any) -> Path:
    from ..io.files import atomic_target
    from .onnx import export_onnx

    with atomic_target(path) as tmp:
        export_onnx(model, tmp, **options)
    return path


def _torchscript(model: Any, path: Path) -> Path:
    from ..io.files import atomic_target
    from ._network import export_torchscript

    with atomic_target(path) as tmp:
        export_torchscript(model, tmp)
    return path


def _bioimageio(model: Any, path: Path, **options: Any) -> Path:
    from .bioimageio import export_bioimageio

    return export_bioimageio(model, path, **options)


_EXPORTERS = {"onnx": _onnx, "torchscript": _torchscript, "bioimageio": _bioimageio}
