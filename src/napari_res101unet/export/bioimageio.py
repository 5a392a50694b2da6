"""bioimage.io model packages (spec 0.5): write one from a Res101_UNet, open one back.

A package holds ``rdf.yaml``, the weights (``pytorch_state_dict`` rebuilt by
``segmentation_models_pytorch.Unet`` with the kwargs in the description, plus
``torchscript`` and/or ``onnx``), a test input and output computed by this plugin's own
normalisation and network, a cover image, a README and a conda environment. Every weight
format outputs **probabilities** (softmax, or sigmoid for a one-class head); the input
preprocessing reproduces the checkpoint's normalisation (see ``_rdf.EXACT`` for where the
match is exact). ``config.napari_res101unet.spec`` keeps the full model spec, so
:func:`read_package` (behind ``load_model``) restores class names and normalisation.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ..io.bioimageio import CONFIG_KEY, RDF_NAMES
from ._network import architecture_kwargs, checked_spec, resolved_normalization
from ._sample import prepare_sample, synthetic_sample

WEIGHT_FORMATS = ("pytorch_state_dict", "torchscript", "onnx")


def export_bioimageio(
    model: Any,
    path: str | os.PathLike,
    *,
    normalization: str | dict | None = None,
    sample: np.ndarray | None = None,
    weights: tuple[str, ...] | list[str] = WEIGHT_FORMATS,
    name: str | None = None,
    description: str | None = None,
    authors: list[str] | None = None,
    license: str = "CC-BY-4.0",
    validate: bool = True,
) -> Path:
    """Write ``model`` as a bioimage.io model package (a folder, or a ``.zip``).

    Parameters
    ----------
    model : torch.nn.Module
        A Res101_UNet with its spec.
    path : path
        Target folder, or a file ending in ``.zip``. Replaced when it exists (the caller
        decides about overwriting); written beside it first, so a failure leaves it as was.
    normalization : str or dict, optional
        Overrides the spec's normalisation; needed when that is ``auto`` and no sample is
        given (``auto`` is then resolved from the sample's dtype, as inference would).
    sample : (Y, X[, C]) ndarray, optional
        Raw image the test input is cut from (centre crop, sides multiples of 32, at most
        256). Default: a synthetic image matching the normalisation.
    weights : sequence of str
        Weight formats: ``pytorch_state_dict`` (always) plus ``torchscript``/``onnx``.
    name, description, authors, license : optional
        Package metadata (license: an SPDX id; default CC-BY-4.0).
    validate : bool
        Check the written description with ``bioimageio.spec`` (format only; the full
        inference test is ``bioimageio.core.test_model``).

    Returns
    -------
    Path
        The folder or zip written.
    """
    spec = checked_spec(model)
    formats = _check_formats(weights)
    if sample is None:
        setting = resolved_normalization(spec, normalization, None)
        raw = synthetic_sample(spec.in_channels, setting["mode"])
    else:
        raw = prepare_sample(sample, spec.in_channels)
        setting = resolved_normalization(spec, normalization, raw)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        _write_folder(tmp, model, spec, setting, raw, formats, name, description, authors,
                      license)  # fmt: skip
        if validate:
            _validate(tmp / RDF_NAMES[0])
        _move_into_place(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


def _check_formats(weights) -> list[str]:
    formats = [weights] if isinstance(weights, str) else list(weights)
    unknown = [w for w in formats if w not in WEIGHT_FORMATS]
    if unknown or "pytorch_state_dict" not in formats:
        raise ValueError(
            f"weights {formats!r}: allowed are {', '.join(WEIGHT_FORMATS)}, and "
            "pytorch_state_dict is always included"
        )
    return [w for w in WEIGHT_FORMATS if w in formats]


def _write_folder(folder, model, spec, setting, raw, formats, name, descr, authors, lic):
    import torch

    from .. import __version__
    from ..model import ModelSpec
    from ..preprocess.normalize import make_normalizer
    from . import _docs, _rdf
    from ._network import probability_network

    norm = make_normalizer(np.moveaxis(raw, 0, -1)[None], setting, spec.in_channels)
    test_in = raw[None].astype(np.float32)
    with torch.no_grad():
        probs = probability_network(model)(torch.from_numpy(norm(np.moveaxis(raw, 0, -1))[None]))
    test_out = probs.numpy().astype(np.float32)
    np.save(folder / "test_input.npy", test_in)
    np.save(folder / "test_output.npy", test_out)
    _write_samples(folder, test_in, test_out)
    _docs.write_cover(folder / "cover.png", raw, test_out[0])
    title = name or spec.name
    (folder / "README.md").write_text(_docs.readme(spec, setting, formats, title))
    (folder / "environment.yaml").write_text(_ENVIRONMENT)
    written = ModelSpec.from_dict({**spec.to_dict(), "normalization": setting})
    rdf = {
        "format_version": _format_version(),
        "type": "model",
        "name": title,
        "description": descr or _description(spec),
        "authors": [{"name": a} for a in (authors or ["napari-res101unet user"])],
        "cite": _rdf.CITATIONS,
        "license": lic,
        "documentation": {"source": "README.md"},
        "covers": [{"source": "cover.png"}],
        "tags": ["segmentation", "unet", "resnet101", "napari-res101unet", "2d"],
        "inputs": [_rdf.input_tensor(spec, _rdf.preprocessing(norm, setting))],
        "outputs": [_rdf.output_tensor(spec)],
        "weights": _write_weights(folder, model, spec, formats),
        "config": {CONFIG_KEY: {"version": __version__, "spec": written.to_dict()}},
    }
    _dump_yaml(folder / RDF_NAMES[0], rdf)


def _format_version() -> str:
    """The newest model format the installed ``bioimageio.spec`` implements (0.5.x).

    Written as is, so validation does not go through bioimageio.spec's format converter.
    """
    from bioimageio.spec.model.v0_5 import ModelDescr

    return str(ModelDescr.implemented_format_version)


def _write_samples(folder: Path, test_in: np.ndarray, test_out: np.ndarray) -> None:
    """TIFF copies of the test tensors (``sample_tensor``: for people, not for tests)."""
    import tifffile

    tifffile.imwrite(folder / "sample_input.tif", test_in[0])
    tifffile.imwrite(folder / "sample_output.tif", test_out[0])


def _description(spec) -> str:
    names = ", ".join(spec.class_names)
    return f"Res101_UNet (U-Net with a ResNet-101 encoder) segmenting {names}."


_ENVIRONMENT = """\
name: res101unet
channels:
  - conda-forge
  - nodefaults
dependencies:
  - python>=3.10
  - pytorch>=2.1
  - pip
  - pip:
      - segmentation-models-pytorch>=0.4
"""


def _write_weights(folder: Path, model, spec, formats: list[str]) -> dict:
    import torch

    from ._network import export_torchscript
    from .onnx import OPSET, export_onnx

    version = torch.__version__.split("+")[0]
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    torch.save(state, folder / "weights.pt")
    out: dict[str, dict] = {
        "pytorch_state_dict": {
            "source": "weights.pt",
            "sha256": _sha256(folder / "weights.pt"),
            "architecture": {
                "callable": "Unet",
                "import_from": "segmentation_models_pytorch",
                "kwargs": architecture_kwargs(spec),
            },
            "pytorch_version": version,
            "dependencies": {"source": "environment.yaml"},
        }
    }
    if "torchscript" in formats:
        export_torchscript(model, folder / "weights_torchscript.pt")
        out["torchscript"] = {"source": "weights_torchscript.pt", "pytorch_version": version}
    if "onnx" in formats:
        export_onnx(model, folder / "weights.onnx")
        out["onnx"] = {"source": "weights.onnx", "opset_version": OPSET}
    for key, entry in out.items():
        entry["sha256"] = _sha256(folder / entry["source"])
        if key != "pytorch_state_dict":
            entry["parent"] = "pytorch_state_dict"
    return out


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _dump_yaml(path: Path, data: dict) -> None:
    import yaml

    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


def _validate(rdf: Path) -> None:
    from bioimageio.spec import InvalidDescr, load_description

    descr = load_description(rdf, perform_io_checks=True)
    if isinstance(descr, InvalidDescr):
        summary = descr.validation_summary
        errors = "; ".join(f"{'.'.join(map(str, e.loc))}: {e.msg}" for e in summary.errors)
        raise ValueError(f"the bioimage.io description does not validate: {errors}")


def _move_into_place(tmp: Path, path: Path) -> None:
    from ..io.files import atomic_target

    if path.suffix.lower() == ".zip":
        with atomic_target(path) as target, zipfile.ZipFile(target, "w") as zf:
            for item in sorted(tmp.iterdir()):
                zf.write(item, item.name, compress_type=_compression(item))
        return
    if path.exists():
        old = path.with_name(f".{path.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(path, old)
        os.replace(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, path)
    os.chmod(path, 0o777 & ~_umask())


def _compression(item: Path) -> int:
    return zipfile.ZIP_STORED if item.suffix in (".png",) else zipfile.ZIP_DEFLATED


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
