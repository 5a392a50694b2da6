"""Opening a bioimage.io package as a Res101_UNet (behind ``load_model``).

Only ``rdf.yaml`` and the ``pytorch_state_dict`` weights are read: YAML with PyYAML's
safe loader and the weights with ``torch.load(weights_only=True)``, so no code from the
package ever runs. Both are bounded before anything is allocated: their declared sizes
(the zip directory's, or the files') and a capped read against
:data:`._limits.MAX_PACKAGE_YAML_BYTES` and :data:`._limits.MAX_WEIGHTS_BYTES`, and the
YAML nodes its aliases stand for against :data:`._limits.MAX_YAML_NODES` (an alias bomb
of a few hundred bytes stands for billions).
"""

from __future__ import annotations

import io
import os
import warnings
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import Any

from ..config import DECODER_CHANNELS, ENCODER_NAME
from . import _limits

RDF_NAMES = ("rdf.yaml", "bioimageio.yaml")
CONFIG_KEY = "napari_res101unet"


def is_package(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a bioimage.io package: a ``.zip``, or a folder with rdf.yaml."""
    path = Path(path)
    if path.is_dir():
        return any((path / n).is_file() for n in RDF_NAMES)
    return path.suffix.lower() == ".zip" or path.name in RDF_NAMES


def read_package(path: str | os.PathLike):
    """``(state_dict, ModelSpec)`` of a bioimage.io package (folder, its rdf.yaml, or a
    ``.zip``) holding a Res101_UNet.

    Raises
    ------
    CheckpointError
        When the package is unreadable, holds no ``pytorch_state_dict`` weights, or its
        architecture is not smp's ``Unet`` with a ``resnet101`` encoder.
    """
    path = Path(path)
    if path.name in RDF_NAMES:
        path = path.parent
    from ..errors import CheckpointError

    files = _Files(path)
    rdf = files.rdf()
    if rdf.get("type") != "model":
        raise CheckpointError(f"{path.name} is a bioimage.io {rdf.get('type')!r}, not a model")
    entry = (rdf.get("weights") or {}).get("pytorch_state_dict")
    if not isinstance(entry, dict):
        formats = ", ".join(rdf.get("weights") or {}) or "none"
        raise CheckpointError(
            f"{path.name} has no pytorch_state_dict weights (it has: {formats}); "
            "napari-res101unet needs them to rebuild Res101_UNet"
        )
    kwargs = _check_architecture(entry.get("architecture") or {}, path)
    state = _load_state(files.read(str(entry.get("source", "")), _limits.MAX_WEIGHTS_BYTES), path)
    return state, _spec(rdf, kwargs, path)


def _check_architecture(arch: dict, path: Path) -> dict:
    from ..errors import CheckpointError

    name = str(arch.get("callable", ""))
    source = str(arch.get("import_from") or arch.get("source") or "")
    kwargs = arch.get("kwargs") or {}
    found = f"{source}.{name}" if source else name or "an unnamed architecture"
    is_smp = source == "segmentation_models_pytorch" and name == "Unet"
    encoder = kwargs.get("encoder_name", "resnet34") if is_smp else None
    if not is_smp or encoder != ENCODER_NAME:
        what = f"{found} with encoder {encoder!r}" if is_smp else found
        raise CheckpointError(
            f"{path.name} is a bioimage.io model of architecture {what}; napari-res101unet "
            f"opens only segmentation_models_pytorch.Unet with encoder {ENCODER_NAME!r} "
            "(Res101_UNet)"
        )
    return kwargs


def _load_state(data: bytes, path: Path) -> dict:
    import torch

    from ..errors import CheckpointError

    try:
        obj = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(
            f"{path.name}: its pytorch_state_dict weights are not a plain state dict "
            f"({type(exc).__name__}: {str(exc).strip()[:200]})"
        ) from None
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{path.name}: its weights do not hold a state dict of tensors")
    return obj


def _spec(rdf: dict, kwargs: dict, path: Path):
    """The spec we wrote into ``config``; else one rebuilt from the architecture kwargs."""
    from ..errors import CheckpointError
    from ..model import ModelSpec

    ours = ((rdf.get("config") or {}).get(CONFIG_KEY) or {}).get("spec")
    try:
        if isinstance(ours, dict):
            spec = ModelSpec.from_dict(ours)
        else:
            spec = _foreign_spec(rdf, kwargs, path)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{path.name}: its model description is not usable: {exc}") from None
    for key in ("in_channels", "classes"):
        if key in kwargs and int(kwargs[key]) != getattr(spec, key):
            raise CheckpointError(
                f"{path.name}: {key}={getattr(spec, key)} in its config disagrees with the "
                f"architecture's {key}={kwargs[key]}"
            )
    spec.name = str(rdf.get("name") or spec.name)
    return spec


def _foreign_spec(rdf: dict, kwargs: dict, path: Path):
    from ..model import ModelSpec

    names = None
    outputs = rdf.get("outputs") or [{}]
    for axis in outputs[0].get("axes") or []:
        if isinstance(axis, dict) and axis.get("type") == "channel":
            names = [str(n) for n in axis.get("channel_names") or []]
    warnings.warn(
        f"{path.name} was not written by napari-res101unet: its normalisation is not known "
        "here ('auto' is used; its own preprocessing is not applied)",
        stacklevel=4,
    )
    return ModelSpec(
        in_channels=int(kwargs.get("in_channels", 3)),
        classes=int(kwargs.get("classes", 1)),
        class_names=names or [],
        decoder_channels=list(kwargs.get("decoder_channels", DECODER_CHANNELS)),
        encoder_weights="unknown",
        name=str(rdf.get("name") or path.stem),
    )


class _Files:
    """The files of a package folder or zip."""

    def __init__(self, path: Path) -> None:
        from ..errors import CheckpointError

        self.path = path
        self.zip: zipfile.ZipFile | None = None
        if not path.is_dir():
            try:
                self.zip = zipfile.ZipFile(path)
            except (zipfile.BadZipFile, OSError) as exc:
                raise CheckpointError(f"{path.name} is not a readable zip file: {exc}") from None

    def names(self) -> list[str]:
        if self.zip is not None:
            return self.zip.namelist()
        return [p.name for p in self.path.iterdir() if p.is_file()]

    def read(self, name: str, limit: int) -> bytes:
        """The bytes of ``name``, refused when its declared size (the zip directory's, or
        the file's) is over ``limit``, and never more than ``limit`` bytes read."""
        from ..errors import CheckpointError

        rel = PurePosixPath(name)
        if not name or rel.is_absolute() or ".." in rel.parts or "://" in name:
            raise CheckpointError(f"{self.path.name}: weights source {name!r} is not a file "
                                  "inside the package")  # fmt: skip
        try:
            if self.zip is not None:
                info = self.zip.getinfo(str(rel))
                self._check_size(name, info.file_size, limit)
                with self.zip.open(info) as fh:
                    data = fh.read(limit + 1)
            else:
                self._check_size(name, (self.path / rel).stat().st_size, limit)
                with open(self.path / rel, "rb") as fh:
                    data = fh.read(limit + 1)
        except (KeyError, OSError, zipfile.BadZipFile, EOFError, zlib.error) as exc:
            raise CheckpointError(f"{self.path.name}: cannot read {name}: {exc}") from None
        self._check_size(name, len(data), limit)
        return data

    def _check_size(self, name: str, size: int, limit: int) -> None:
        from ..errors import CheckpointError

        if size > limit:
            raise CheckpointError(
                f"{self.path.name}: {name} holds {size:,} bytes, over the limit of "
                f"{limit:,} for it (a forged or damaged package?); it is not read"
            )

    def rdf(self) -> dict[str, Any]:
        import yaml

        from ..errors import CheckpointError

        names = self.names()
        found = [n for n in names if n in RDF_NAMES or n.endswith(".bioimageio.yaml")]
        if not found:
            raise CheckpointError(
                f"{self.path.name} is not a bioimage.io package (no rdf.yaml or bioimageio.yaml)"
            )
        text = self.read(found[0], _limits.MAX_PACKAGE_YAML_BYTES)
        try:
            data = bounded_yaml(text, f"{self.path.name}: {found[0]}")
        except yaml.YAMLError as exc:
            raise CheckpointError(
                f"{self.path.name}: {found[0]} is not valid YAML: {exc}"
            ) from None
        if not isinstance(data, dict):
            raise CheckpointError(f"{self.path.name}: {found[0]} is not a description")
        return data


def bounded_yaml(text: bytes, label: str) -> Any:
    """``yaml.safe_load(text)``, refused when its aliases expand to more nodes than
    :data:`._limits.MAX_YAML_NODES`, which is counted on the composed node graph (each
    node once) before anything is constructed.

    Raises
    ------
    CheckpointError
        Naming ``label`` and the count.
    yaml.YAMLError
        For text that is not YAML.
    """
    import yaml

    from ..errors import CheckpointError

    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        limit = _limits.MAX_YAML_NODES
        try:
            count = _expanded_nodes(node, {}, limit)
        except RecursionError:
            count = limit + 1
        if count > limit:
            raise CheckpointError(
                f"{label}: its aliases expand to more than {limit:,} YAML nodes (an alias "
                "bomb?); it is not read"
            )
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _expanded_nodes(node: Any, seen: dict[int, int], limit: int) -> int:
    """Nodes ``node`` stands for with every alias expanded (memoised per node; stops
    counting past ``limit``)."""
    known = seen.get(id(node))
    if known is not None:
        return known
    value = node.value
    if isinstance(value, list):
        children = [n for item in value for n in (item if isinstance(item, tuple) else (item,))]
    else:
        children = []
    total = 1
    for child in children:
        total += _expanded_nodes(child, seen, limit)
        if total > limit:
            break
    seen[id(node)] = total
    return total
