"""The uncertainty of a segmentation in the viewer: a layer and a "review these first" list."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..inference.uncertainty import Uncertain, rank_uncertain, review_text
from .layers import put_map

REVIEW_TOP = 5


def put_uncertainty(viewer: Any, image: Any, unc: np.ndarray, index: int | None) -> Any:
    """An uncertainty image layer over ``image`` (``"<image> uncertainty"``, magma, 0..1)."""
    return put_map(viewer, image, unc, index, "uncertainty", opacity=0.7, blending="translucent")


def review_items(unc: np.ndarray, labels: np.ndarray) -> tuple[list[Uncertain], str]:
    """``(items, by)``: the slices of a stack, else the objects of ``labels`` (or, with no
    objects, the uncertain areas), most uncertain first."""
    unc = np.asarray(unc)
    if unc.ndim == 3:
        return rank_uncertain(unc, by="slice", top=REVIEW_TOP), "slice"
    lab = np.asarray(labels)
    return rank_uncertain(unc, lab if lab.any() else None, by="region", top=REVIEW_TOP), "region"


def show_uncertainty(
    viewer: Any, image: Any, unc: np.ndarray, labels: np.ndarray, index: int | None
) -> tuple[list[Uncertain], str, str]:
    """Add the layer and rank: ``(items, by, "review: slice 12 (0.41), ...")``."""
    put_uncertainty(viewer, image, unc, index)
    items, by = review_items(unc, labels)
    return items, by, review_text(items, by)


def jump_to(viewer: Any, layer: Any, item: Uncertain, by: str, index: int | None = None) -> None:
    """Show a review item: its slice of the stack, or centre the view on its region."""
    ndim = len(layer.data.shape) - (1 if getattr(layer, "rgb", False) else 0)
    point = np.asarray(layer.world_to_data(viewer.dims.point), float)[-ndim:]
    if by == "slice":
        point[0] = item.index
    else:
        centre = np.asarray(item.centroid, float)
        point[-len(centre) :] = centre
        if index is not None and ndim == 3:
            point[0] = index
    world = np.asarray(layer.data_to_world(point), float)
    offset = len(viewer.dims.point) - len(world)
    for axis, value in enumerate(world):
        viewer.dims.set_point(axis + offset, float(value))
    if by == "region":
        viewer.camera.center = tuple(world[-2:])
