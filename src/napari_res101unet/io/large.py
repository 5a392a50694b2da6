"""Large images opened lazily: zarr arrays, OME-Zarr, big/pyramidal TIFF, dask arrays.

A :class:`LargeSource` is small and picklable: it names where the pixels are (a store path
and the array inside it, or a dask array) and how its axes read, and each process opens
the store itself (:meth:`LargeSource.array`, cached per process), so dask workers read
their own regions from disk. Numpy, zarr and tifffile only; no torch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["LargeSource", "is_large_source", "open_source"]

ZARR_SUFFIXES = (".zarr", ".ome.zarr", ".zarr.zip")
TIFF_SUFFIXES = (".tif", ".tiff", ".svs", ".ome.tif", ".ome.tiff", ".btf", ".tf8")
TIFF_LARGE_BYTES = 1 << 30
"""A TIFF whose level 0 holds more than this is segmented blockwise (1 GiB)."""
KNOWN_AXES = "tczyx"
_OPEN: dict[tuple, Any] = {}


@dataclass(frozen=True)
class LargeSource:
    """Where a large image is and how its axes read.

    Attributes
    ----------
    path : str or None
        The zarr store / TIFF file (None for a dask array held in ``dask_array``).
    kind : str
        ``"zarr"``, ``"tiff"`` or ``"dask"``.
    component : str
        The array inside a zarr store (``""``: the store is the array); the TIFF series
        level for ``"tiff"``.
    axes : str
        One letter per axis of the stored array, from ``tczyx`` (e.g. ``"yxc"``, ``"czyx"``).
    scale : tuple of float
        Physical size of a pixel along each of ``axes`` (1.0 where unknown).
    units : tuple of str
        Unit of each axis (``""`` where unknown).
    """

    path: str | None
    kind: str
    component: str
    axes: str
    shape: tuple[int, ...]
    dtype: str
    scale: tuple[float, ...]
    units: tuple[str, ...] = ()
    dask_array: Any = field(default=None, compare=False, repr=False)

    def array(self) -> Any:
        """The lazy array (zarr array, tifffile zarr array or dask array) of level 0."""
        if self.kind == "dask":
            return self.dask_array
        key = (self.path, self.kind, self.component)
        if key not in _OPEN:
            _OPEN[key] = _open_array(self.path, self.kind, self.component)
        return _OPEN[key]

    @property
    def spatial_axes(self) -> str:
        return "".join(a for a in self.axes if a in "zyx")

    def selection(self, index: int, rows: tuple[int, int], cols: tuple[int, int]) -> tuple:
        """The index into :meth:`array` of slice ``index`` (along ``z``), rows and cols."""
        sel: list[Any] = []
        for a, n in zip(self.axes, self.shape):
            sel.append(
                {"y": slice(*rows), "x": slice(*cols), "z": index, "t": 0}.get(a, slice(0, n))
            )
        return tuple(sel)

    def arrange(self, block: Any) -> np.ndarray:
        """A block read with :meth:`selection` as ``(Y, X, C)`` numpy."""
        block = np.asarray(block)
        kept = [a for a in self.axes if a in "cyx"]
        block = np.transpose(block, [kept.index(a) for a in "yxc" if a in kept])
        return block if "c" in kept else block[..., np.newaxis]

    def read(self, index: int, rows: tuple[int, int], cols: tuple[int, int]) -> np.ndarray:
        """Raw pixels of slice ``index`` (along ``z``, 0 without) as ``(Y, X, C)``."""
        return self.arrange(self.array()[self.selection(index, rows, cols)])

    def stack(self) -> Any:
        """The whole image as a lazy ``(N, Y, X, C)`` dask array (for statistics)."""
        import dask.array as da

        arr = self.array()
        arr = arr if self.kind == "dask" else da.from_zarr(arr)
        if "t" in self.axes:
            arr = arr[tuple(0 if a == "t" else slice(None) for a in self.axes)]
        axes = self.axes.replace("t", "")
        if "c" not in axes:
            arr, axes = arr[..., None], axes + "c"
        if "z" not in axes:
            arr, axes = arr[None], "z" + axes
        return da.transpose(arr, [axes.index(a) for a in "zyxc"])

    @property
    def n_slices(self) -> int:
        return self.shape[self.axes.index("z")] if "z" in self.axes else 1

    @property
    def yx(self) -> tuple[int, int]:
        return self.shape[self.axes.index("y")], self.shape[self.axes.index("x")]

    @property
    def channels(self) -> int:
        return self.shape[self.axes.index("c")] if "c" in self.axes else 1


def is_large_source(path: str | Path) -> bool:
    """Whether the CLI segments ``path`` blockwise: a zarr store (any, incl. OME-Zarr) or a
    TIFF whose level 0 holds more than :data:`TIFF_LARGE_BYTES`. Never raises: a path
    that cannot be looked at, or a TIFF whose pixel data is not in the file (a forged
    header), is not large (the plain reader then says what is wrong with it)."""
    try:
        p = Path(path)
        name = p.name.lower()
        if name.endswith(ZARR_SUFFIXES) or (p.is_dir() and _is_zarr_dir(p)):
            return True
        if not (name.endswith(TIFF_SUFFIXES) and p.is_file()):
            return False
        import tifffile

        from ._tiff_extent import tiff_problem

        with tifffile.TiffFile(p) as tif:
            series = tif.series[0]
            large = int(np.prod(series.shape)) * series.dtype.itemsize > TIFF_LARGE_BYTES
            return large and tiff_problem(tif) is None
    except Exception:  # anything unreadable is not a large source; reading it says why
        return False


def _is_zarr_dir(p: Path) -> bool:
    return any((p / f).is_file() for f in ("zarr.json", ".zgroup", ".zarray"))


def open_source(image: Any, axes: str | None = None) -> LargeSource:
    """Describe a large image: a path (zarr / OME-Zarr / TIFF), a zarr array or a dask array.

    Parameters
    ----------
    image : str, Path, zarr.Array or dask.array.Array
        For an OME-Zarr image the level-0 array of its first multiscale is used, with its
        axes and scale.
    axes : str, optional
        Axis letters (from ``tczyx``) when the data carries none; default from the shape:
        ``yx``, ``yxc`` (trailing 1, 3 or 4), ``zyx``, ``zyxc``.

    Raises
    ------
    FileNotFoundError
        When the path does not exist.
    ValueError
        When the store cannot be read, or its axes are not 2D/3D images (with channels).
    """
    if isinstance(image, (str, Path)):
        return _open_path(Path(image).expanduser(), axes)
    if type(image).__module__.startswith("dask"):
        return _described(None, "dask", "", image, axes, None, image)
    if type(image).__module__.startswith("zarr"):
        store = getattr(image.store, "root", None)
        if store is None:
            raise ValueError("a zarr array in memory cannot be segmented blockwise: save it")
        return _described(str(store), "zarr", image.path, image, axes, None)
    raise TypeError(
        f"image must be a path, a zarr array or a dask array; got {type(image).__name__}"
    )


def _open_path(path: Path, axes: str | None) -> LargeSource:
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    if path.name.lower().endswith(TIFF_SUFFIXES) and path.is_file():
        from ._tiff_extent import check_tiff

        check_tiff(path)  # a forged header: refused before any block is read
        try:
            arr = _open_array(str(path), "tiff", "0")
        except Exception as exc:
            raise ValueError(f"{path.name} is not a readable TIFF: {exc}") from None
        return _described(str(path), "tiff", "0", arr, axes or _tiff_axes(path), None)
    try:
        import zarr

        node = zarr.open(str(path), mode="r")
    except Exception as exc:
        raise ValueError(f"{path} is not a readable zarr store: {exc}") from None
    if isinstance(node, zarr.Array):
        return _described(str(path), "zarr", "", node, axes, None)
    component, ome_axes, scale, units = _ome_level0(node, path)
    arr = node[component]
    return _described(str(path), "zarr", component, arr, axes or ome_axes, (scale, units))


def _ome_level0(group: Any, path: Path) -> tuple[str, str | None, list, list]:
    """``(path, axes, scale, units)`` of level 0 of an OME-Zarr group (0.4 or 0.5)."""
    attrs = dict(group.attrs)
    meta = attrs.get("ome", attrs)
    multiscales = meta.get("multiscales")
    if not multiscales:
        arrays = sorted(name for name, _ in group.arrays())
        if len(arrays) == 1:
            return arrays[0], None, [], []
        raise ValueError(
            f"{path.name} is a zarr group without OME-Zarr multiscales metadata; "
            f"name the array inside (one of {arrays or 'none'})"
        )
    first = multiscales[0]
    axes = first.get("axes", [])
    names = "".join((a["name"] if isinstance(a, dict) else str(a))[:1].lower() for a in axes)
    units = [a.get("unit", "") if isinstance(a, dict) else "" for a in axes]
    dataset = first["datasets"][0]
    scale: list = []
    for t in dataset.get("coordinateTransformations", []):
        if t.get("type") == "scale":
            scale = list(t["scale"])
    return dataset["path"], names or None, scale, units


_TIFF_AXES = {"Y": "y", "X": "x", "S": "c", "C": "c", "Z": "z", "Q": "z", "I": "z", "T": "t"}


def _tiff_axes(path: Path) -> str | None:
    """tifffile's axes of series 0 (``YXS``, ``ZYX``...) in ``tczyx`` letters, or None."""
    import tifffile

    with tifffile.TiffFile(path) as tif:
        found = tif.series[0].axes
    mapped = "".join(_TIFF_AXES.get(a, "?") for a in found)
    return None if "?" in mapped or len(set(mapped)) != len(mapped) else mapped


def _open_array(path: str | None, kind: str, component: str) -> Any:
    if kind == "tiff":
        import tifffile
        import zarr

        store = tifffile.imread(path, aszarr=True, level=int(component or 0))
        return zarr.open(store, mode="r")
    import zarr

    node = zarr.open(path, mode="r")
    return node[component] if component else node


def _described(path, kind, component, arr, axes, ome, dask_array=None) -> LargeSource:
    shape = tuple(int(n) for n in arr.shape)
    axes = (axes or _default_axes(shape)).lower()
    _check_axes(axes, shape, path)
    scale, units = ome if isinstance(ome, tuple) else ([], [])
    scale = tuple(float(s) for s in scale) if len(scale) == len(axes) else (1.0,) * len(axes)
    units = tuple(units) if len(units) == len(axes) else ("",) * len(axes)
    return LargeSource(
        path, kind, component, axes, shape, str(arr.dtype), scale, units, dask_array
    )


def _default_axes(shape: tuple[int, ...]) -> str:
    if len(shape) == 2:
        return "yx"
    if len(shape) == 3:
        return "yxc" if shape[-1] in (1, 3, 4) else "zyx"
    if len(shape) == 4:
        return "zyxc"
    raise ValueError(f"cannot tell the axes of an array of shape {shape}; pass axes=")


def _check_axes(axes: str, shape: tuple[int, ...], path) -> None:
    where = f"{Path(path).name}: " if path else ""
    if len(axes) != len(shape) or any(a not in KNOWN_AXES for a in axes) or "y" not in axes:
        raise ValueError(
            f"{where}axes {axes!r} do not fit an image of shape {shape}; expected one letter "
            f"per axis from {KNOWN_AXES!r} including y and x (e.g. 'yx', 'yxc', 'czyx')"
        )
    if "x" not in axes or len(set(axes)) != len(axes):
        raise ValueError(f"{where}axes {axes!r} must name y and x once each")
    if "t" in axes and shape[axes.index("t")] != 1:
        raise ValueError(f"{where}time series (t = {shape[axes.index('t')]}) are not supported")


def describe(source: LargeSource) -> str:
    """One line for logs: where, shape and axes."""
    where = Path(source.path).name if source.path else "dask array"
    return f"{where} {json.dumps(list(source.shape))} ({source.axes}, {source.dtype})"
