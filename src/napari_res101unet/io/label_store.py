"""Where blockwise labels go: an OME-Zarr label image written block by block, atomically.

A run writes into a hidden sibling (``.NAME.partial``) whose attributes say
``complete: false``; :func:`finish` marks it complete and renames it into place, so a
failed or interrupted run never leaves a store that looks finished. The labels are an
OME-Zarr image (``multiscales`` with one level ``0``, ``image-label``) with the source's
spatial axes and scale: a standalone store, or ``labels/NAME`` inside an OME-Zarr image.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .large import LargeSource

__all__ = ["LabelTarget", "create_labels", "finish", "open_labels", "write_block"]

MARK = "napari_res101unet"
_ARRAYS: dict[str, Any] = {}


@dataclass(frozen=True)
class LabelTarget:
    """The store being written (``path``, array ``0`` inside) and where it will end up."""

    path: str
    final: str
    zarr_format: int
    parent_labels: str | None = None


def create_labels(
    source: LargeSource,
    output: str | os.PathLike,
    *,
    chunks: tuple[int, ...],
    dtype: np.dtype,
    label_name: str | None = None,
    overwrite: bool = False,
    attrs: dict | None = None,
) -> LabelTarget:
    """Create the (hidden, incomplete) labels store for ``source``.

    Parameters
    ----------
    output : path
        A new store (``labels.zarr``), or with ``label_name`` an existing OME-Zarr image
        whose ``labels/label_name`` receives the labels.
    chunks : tuple of int
        Chunks of the labels array (one block each, so workers never share a chunk).

    Raises
    ------
    FileExistsError
        When the output exists and ``overwrite`` is False.
    ValueError
        When ``label_name`` is given but ``output`` is not a zarr group.
    """
    import zarr

    out = Path(output).expanduser()
    fmt, parent = 3, None
    if label_name is not None:
        if not label_name or "/" in label_name or label_name.startswith("."):
            raise ValueError(f"label_name must be a plain name; got {label_name!r}")
        try:
            image = zarr.open_group(str(out), mode="r")
        except Exception:
            raise ValueError(f"{out} is not a zarr group to add labels/{label_name} to") from None
        fmt = image.metadata.zarr_format
        parent = str(out / "labels")
        out = out / "labels" / label_name
    check_free(out, overwrite)
    temp = out.parent / f".{out.name}.partial"
    if temp.exists():
        shutil.rmtree(temp)
    group = zarr.open_group(str(temp), mode="w", zarr_format=fmt)
    shape = tuple(source.shape[source.axes.index(a)] for a in source.spatial_axes)
    group.create_array("0", shape=shape, chunks=chunks, dtype=dtype, fill_value=0)
    group.attrs.update(_ome_attrs(source, fmt) | {MARK: {"complete": False, **(attrs or {})}})
    return LabelTarget(str(temp), str(out), fmt, parent)


def check_free(out: str | os.PathLike, overwrite: bool) -> None:
    """Refuse an existing output (FileExistsError) unless ``overwrite``."""
    if Path(out).exists() and not overwrite:
        raise FileExistsError(f"{out} exists; pass overwrite=True (--overwrite) to replace it")


def _ome_attrs(source: LargeSource, fmt: int) -> dict[str, Any]:
    spatial = source.spatial_axes
    axes = []
    for a in spatial:
        unit = source.units[source.axes.index(a)]
        axes.append({"name": a, "type": "space", **({"unit": unit} if unit else {})})
    scale = [source.scale[source.axes.index(a)] for a in spatial]
    multiscale = {
        "name": "labels",
        "axes": axes,
        "datasets": [
            {"path": "0", "coordinateTransformations": [{"type": "scale", "scale": scale}]}
        ],
    }
    if fmt == 2:
        return {"multiscales": [{"version": "0.4", **multiscale}], "image-label": {}}
    return {"ome": {"version": "0.5", "multiscales": [multiscale], "image-label": {}}}


def write_block(path: str, selection: tuple[slice, ...], labels: np.ndarray) -> None:
    """Write one block of labels into the store being written (opened once per process)."""
    import zarr

    if path not in _ARRAYS:
        _ARRAYS[path] = zarr.open_array(str(Path(path) / "0"), mode="r+")
    _ARRAYS[path][selection] = labels


def read_block(path: str, selection: tuple[slice, ...]) -> np.ndarray:
    """Read one block of the store being written (opened once per process)."""
    import zarr

    if path not in _ARRAYS:
        _ARRAYS[path] = zarr.open_array(str(Path(path) / "0"), mode="r+")
    return np.asarray(_ARRAYS[path][selection])


def finish(target: LabelTarget, extra: dict | None = None) -> Path:
    """Mark the store complete and move it into place (replacing an old one)."""
    import zarr

    group = zarr.open_group(target.path, mode="r+")
    group.attrs[MARK] = {**group.attrs[MARK], "complete": True, **(extra or {})}
    _ARRAYS.pop(target.path, None)
    final = Path(target.final)
    if final.exists():
        shutil.rmtree(final)
    os.replace(target.path, final)
    if target.parent_labels is not None:
        _list_label(Path(target.parent_labels), final.name, target.zarr_format)
    return final


def abandon(target: LabelTarget) -> None:
    """Remove the hidden store of a failed run."""
    _ARRAYS.pop(target.path, None)
    shutil.rmtree(target.path, ignore_errors=True)


def _list_label(parent: Path, name: str, fmt: int) -> None:
    import zarr

    group = zarr.open_group(str(parent), mode="a", zarr_format=fmt)
    attrs = dict(group.attrs)
    if fmt == 2:
        names = list(attrs.get("labels", []))
        group.attrs["labels"] = [*names, name] if name not in names else names
    else:
        ome = dict(attrs.get("ome", {"version": "0.5"}))
        names = list(ome.get("labels", []))
        ome["labels"] = [*names, name] if name not in names else names
        group.attrs["ome"] = ome


def open_labels(path: str | os.PathLike, *, writable: bool = False) -> Any:
    """The labels array of a finished store (a zarr array; ``writable`` for a napari Labels
    layer the user paints on), or ValueError if incomplete."""
    import zarr

    group = zarr.open_group(str(path), mode="r+" if writable else "r")
    if not group.attrs.get(MARK, {}).get("complete", False):
        raise ValueError(f"{path} is not a complete labels store (its run did not finish)")
    return group["0"]
