"""Training targets that teach a network to separate touching objects (numpy and SciPy).

Two candidate instance-aware heads, both computed from the objects of a label image:

* :func:`boundary_classes` -- 3 classes, background (0) / interior (1) / contour (2), as
  DCAN learns them: contour pixels are object pixels within ``width`` pixels
  (Chebyshev distance) of a pixel with another value, so the shared boundary of two
  touching objects is contour on both sides and their interiors never touch (not even
  diagonally: seeds from the interior stay apart);
* :func:`distance_targets` -- foreground (0/1) and the distance to the object's boundary
  normalised per object to (0, 1] (1 at the object's centre), as micro-sam's automatic
  mode and StarDist use distances: two touching objects meet at low values.

Objects: an instance map's ids, or the 8-connected components of a binary mask
(:func:`objects_of`; :func:`looks_like_instances` tells which a label image holds). A
``(Z, Y, X)`` input is a stack of 2D slices (the network is 2D): targets are computed
slice by slice.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from ..config import MIN_OBJECT_PERCENTILE

BACKGROUND, INTERIOR, CONTOUR = 0, 1, 2
MIN_INSTANCE_IDS = 3
"""An instance map holds at least this many ids (fewer: classes, e.g. liver and tumour)."""
SINGLE_PART = 0.9
"""Share of ids that must each be one connected object in an instance map."""


def looks_like_instances(labels: np.ndarray) -> bool:
    """Whether a label image is an instance map (one id per object), not a binary mask or
    a class map.

    True when it holds at least :data:`MIN_INSTANCE_IDS` non-zero values and at least
    :data:`SINGLE_PART` of them are each a single 8-connected region (26 in 3D): objects.
    Classes usually appear as several regions each; a class map whose every class is one
    blob (three classes, three blobs) cannot be told apart and counts as instances.
    """
    labels = _check(labels)
    ids = np.unique(labels[labels > 0])
    if len(ids) < MIN_INSTANCE_IDS:
        return False
    structure = np.ones((3,) * labels.ndim, bool)
    boxes = ndimage.find_objects(labels.astype(np.int64))
    single = 0
    for i in ids:
        box = boxes[int(i) - 1]
        single += ndimage.label(labels[box] == i, structure=structure)[1] == 1
    return single >= SINGLE_PART * len(ids)


def objects_of(labels: np.ndarray, instances: bool | None = None) -> np.ndarray:
    """Object ids (int64): an instance map's own ids, or the 8-connected components of a
    binary mask or class map's foreground (per slice for a ``(Z, Y, X)`` stack).

    ``instances`` says which ``labels`` is; None decides by :func:`looks_like_instances`
    (pass it when known: a map of two touching objects looks like two classes).
    """
    labels = _check(labels)
    if instances is None:
        instances = looks_like_instances(labels)
    if instances:
        return labels.astype(np.int64)
    structure = np.ones((3, 3), bool)
    if labels.ndim == 2:
        return ndimage.label(labels > 0, structure=structure)[0].astype(np.int64)
    out, offset = np.zeros(labels.shape, np.int64), 0
    for z in range(labels.shape[0]):
        ids, n = ndimage.label(labels[z] > 0, structure=structure)
        out[z] = np.where(ids > 0, ids + offset, 0)
        offset += n
    return out


def boundary_classes(
    labels: np.ndarray, width: int = 1, *, instances: bool | None = None
) -> np.ndarray:
    """Background / interior / contour targets.

    Parameters
    ----------
    labels : (Y, X) or (Z, Y, X) ndarray of int or bool
        Instance map or binary mask (see :func:`objects_of`).
    width : int
        Contour width in pixels (>= 1).
    instances : bool, optional
        Whether ``labels`` is an instance map (see :func:`objects_of`).

    Returns
    -------
    ndarray of uint8, same shape
        0 background, 1 interior, 2 contour.
    """
    if isinstance(width, bool) or not isinstance(width, int | np.integer) or width < 1:
        raise ValueError(f"width must be an int >= 1 (pixels), got {width!r}")
    objects = objects_of(labels, instances)
    size = (1,) * (objects.ndim - 2) + (2 * width + 1,) * 2  # in-plane only for stacks
    low = ndimage.minimum_filter(objects, size=size, mode="nearest")
    high = ndimage.maximum_filter(objects, size=size, mode="nearest")
    out = np.zeros(objects.shape, np.uint8)
    out[objects > 0] = CONTOUR
    out[(objects > 0) & (low == high)] = INTERIOR
    return out


def distance_targets(
    labels: np.ndarray, *, instances: bool | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Foreground and the per-object normalised distance to the object's boundary.

    ``labels``: an instance map or binary mask, ``(Y, X)`` or ``(Z, Y, X)``;
    ``instances`` as for :func:`objects_of`.

    Returns
    -------
    foreground : ndarray of uint8, same shape as ``labels``
        1 on objects.
    distance : ndarray of float32, same shape
        Euclidean distance of each object pixel to the nearest pixel outside its object
        (background or another object; the image edge is not a boundary, as for the
        contour), divided by the object's largest such distance: in (0, 1], 1 at the
        centre; 0 on background.
    """
    objects = objects_of(labels, instances)
    planes = objects if objects.ndim == 3 else objects[None]
    distance = np.stack([_normalised_distance(p) for p in planes]).reshape(objects.shape)
    return (objects > 0).astype(np.uint8), distance


def _normalised_distance(objects: np.ndarray) -> np.ndarray:
    """Per object: EDT inside it over its bounding box grown by one pixel (clipped at
    the image edge, which is therefore not a boundary), divided by its maximum."""
    out = np.zeros(objects.shape, np.float32)
    for i, box in enumerate(ndimage.find_objects(objects), start=1):
        if box is None:
            continue
        grown = tuple(slice(max(s.start - 1, 0), s.stop + 1) for s in box)
        inside = objects[grown] == i
        if inside.all():  # the object fills the image: no boundary in sight
            out[grown] = 1.0
            continue
        d = ndimage.distance_transform_edt(inside)
        out[grown][inside] = d[inside] / d[inside].max()
    return out


SIZE_SAMPLE_SLICES = 512
"""At most this many label slices (evenly spread) are measured for the smallest size."""


def smallest_object_size(labels: Sequence[np.ndarray], ignore: int | None = None) -> int | None:
    """The smallest plausible object of a training set, in pixels: half the
    :data:`~napari_res101unet.config.MIN_OBJECT_PERCENTILE`-th percentile of its objects'
    areas (per 2D slice: the network is 2D), or None when the labels hold no object.

    Why this size: objects cut by the image edge are left out (they are fragments, not
    small objects), the 5th percentile ignores the few specks any annotation holds, and
    halving it keeps objects smaller than those seen in training (a nucleus cut by the
    section plane) while specks far below every training object are dropped.

    Parameters
    ----------
    labels : sequence of (Y, X) or (N, Y, X) integer ndarray
        Binary masks, class maps (objects: the 8-connected components of the
        foreground) or instance maps (objects: the ids), at the model's pixel size.
    ignore : int, optional
        A label value that marks unlabelled pixels (counted as background here).
    """
    planes = [p for lab in labels for p in (lab if np.ndim(lab) == 3 else [lab])]
    if len(planes) > SIZE_SAMPLE_SLICES:
        keep = np.linspace(0, len(planes) - 1, SIZE_SAMPLE_SLICES).round().astype(int)
        planes = [planes[i] for i in keep]
    areas = []
    for plane in planes:
        plane = np.asarray(plane)
        if ignore is not None:
            plane = np.where(plane == ignore, 0, plane)
        if not plane.any():
            continue
        objects = objects_of(plane)
        sizes = np.bincount(objects.ravel())
        edge = np.unique(np.concatenate([objects[[0, -1]].ravel(), objects[:, [0, -1]].ravel()]))
        inner = np.ones(len(sizes), bool)
        inner[0], inner[edge] = False, False
        chosen = sizes[inner & (sizes > 0)]
        areas.append(chosen if chosen.size else sizes[1:][sizes[1:] > 0])
    areas = np.concatenate(areas) if areas else np.zeros(0)
    if not areas.size:
        return None
    return max(1, int(np.percentile(areas, MIN_OBJECT_PERCENTILE) / 2))


def _check(labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim not in (2, 3):
        raise ValueError(f"labels must be (Y, X) or (Z, Y, X), got shape {labels.shape}")
    if labels.dtype != bool and labels.dtype.kind not in "ui":
        raise TypeError(f"labels must be integers or bool, got dtype {labels.dtype}")
    if labels.dtype.kind == "i" and labels.size and labels.min() < 0:
        raise ValueError(f"labels must be >= 0, got {labels.min()}")
    return labels
