"""Large images opened lazily for napari: OME-Zarr / zarr stores and big or pyramidal TIFF.

Every level becomes a dask array over the store (nothing is read until napari shows it);
a file with several levels opens as one multiscale layer. A trailing (TIFF) or leading
(OME-Zarr) axis of 3 or 4 uint8 channels opens as RGB(A). No torch here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

LayerData = tuple[Any, dict, str]


def is_lazy_file(path: Any) -> bool:
    """Whether the reader opens ``path`` lazily (a zarr store, or a big TIFF)."""
    from .large import is_large_source

    try:
        return is_large_source(Path(path))
    except (OSError, TypeError, ValueError):
        return False


def read_lazy(path: str | Path) -> list[LayerData]:
    """``[(levels or array, kwargs, "image")]`` for a zarr store or a big TIFF.

    Raises
    ------
    ValueError
        When the store cannot be read or its axes are not an image's.
    """
    import dask.array as da

    from .large import open_source

    path = Path(path)
    source = open_source(path)  # level 0, its axes and scale; clear errors
    levels = [da.from_zarr(a) for a in _levels(source)]
    axes = source.axes.replace("t", "") if "t" in source.axes else source.axes
    if "t" in source.axes:
        levels = [lv[tuple(0 if a == "t" else slice(None) for a in source.axes)] for lv in levels]
    rgb = "c" in axes and source.channels in (3, 4) and source.dtype == "uint8"
    if "c" in axes and (rgb or source.channels == 1):
        order = [axes.index(a) for a in axes if a != "c"] + [axes.index("c")]
        levels = [da.transpose(lv, order) for lv in levels]
        if not rgb:
            levels = [lv[..., 0] for lv in levels]
        axes = "".join(a for a in axes if a != "c") + ("c" if rgb else "")
    spatial = [a for a in axes if a != "c"]
    scale = [source.scale[source.axes.index(a)] for a in spatial]
    kwargs: dict[str, Any] = {
        "name": path.name.split(".")[0],
        "scale": scale,
        "metadata": {"store": str(path), "axes": axes, "lazy": True},
    }
    if rgb:
        kwargs["rgb"] = True
    elif "c" in axes:
        kwargs["channel_axis"] = axes.index("c")
    if len(levels) > 1:
        kwargs["multiscale"] = True
        return [(levels, kwargs, "image")]
    return [(levels[0], kwargs, "image")]


def _levels(source: Any) -> list[Any]:
    """The zarr arrays of every level (level 0 first) of the source's store."""
    import zarr

    level0 = source.array()
    if source.kind == "tiff":
        import tifffile

        with tifffile.TiffFile(source.path) as tif:
            count = len(tif.series[0].levels)
        return [level0] + [
            zarr.open(tifffile.imread(source.path, aszarr=True, level=i), mode="r")
            for i in range(1, count)
        ]
    root = zarr.open(source.path, mode="r")
    if isinstance(root, zarr.Array):
        return [level0]
    attrs = dict(root.attrs)
    multiscales = attrs.get("ome", attrs).get("multiscales") or []
    if not multiscales:
        return [level0]
    return [root[d["path"]] for d in multiscales[0]["datasets"]]
