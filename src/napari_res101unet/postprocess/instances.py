"""Objects from a segmentation: one id per gland, nucleus or cell.

One entry point, :func:`instances_from`, with its options in :class:`InstanceOptions`;
small steps that compose (:func:`seeded_watershed`, :func:`fill_holes_per_object`,
:func:`remove_small`, :func:`sequential_ids`). Methods:

* ``components``: connected components of the foreground (8-connected in 2D,
  26-connected in 3D);
* ``watershed``: the distance-transform watershed: the Euclidean distance to the
  background, seeds at its h-maxima (depth ``h`` pixels, so a neck narrower than the
  objects splits them), flooded over the foreground (scikit-image ``watershed`` on
  ``-EDT``);
* ``boundary``: for a model with background / interior / contour classes (DCAN): the
  seeds are the connected interior regions, flooded over the foreground (interior +
  contour) along the interior probability, or the distance to the seeds for hard masks;
* ``distance``: for a model that predicts the (per-object normalised) distance to the
  object boundary: the seeds are the cores of the objects, the connected regions where
  that distance is at least ``distance_level`` (``distance_seeds="core"``, the default),
  or its maxima of depth ``distance_h`` (``"maxima"``), flooded over the foreground
  along it.

Foreground pixels that no seed reaches (an object too small for a seed) become objects
of their own, by connected components. With ``fill_holes`` the ``watershed`` method floods
the foreground with its holes filled (slice by slice: a hole would make a ring of the
distance transform, cut into sectors by the watershed), and holes are filled object by
object after separating; objects
under ``min_size`` pixels removed, and ids made sequential: ``uint16``, or ``uint32`` above
65,535 objects. A ``(Z, Y, X)`` stack is done in 3D, or slice by slice with
``per_slice`` (ids unique across the stack).

Multi-class predictions: objects are found per class by :func:`instances_per_class`;
:func:`instances_from` refuses a class map with a ``ValueError`` that says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from skimage.measure import label
from skimage.morphology import h_maxima
from skimage.segmentation import watershed

from ..config import INSTANCE_FALLBACK, INSTANCE_TUNING, SegmentSettings

METHODS = ("components", "watershed", "boundary", "distance")
DISTANCE_SEEDS = ("core", "maxima")


@dataclass(frozen=True)
class InstanceOptions:
    """How objects are separated (see the module notes).

    Attributes
    ----------
    method : {"components", "watershed", "boundary", "distance"}
    threshold : float
        Probabilities above it are foreground (and interior, for ``boundary``).
    min_size : int
        Objects with fewer pixels (voxels) are removed; 0 keeps all.
    fill_holes : bool
        Fill each object's holes (background it encloses).
    per_slice : bool
        For ``(Z, Y, X)`` input: objects per 2D slice instead of in 3D.
    h : float
        ``watershed``: depth of the distance maxima that seed objects, in pixels.
    distance_seeds : {"core", "maxima"}
        ``distance``: seeds at the cores (distance >= ``distance_level``) or at the
        maxima (depth ``distance_h``) of the predicted distance.
    distance_level : float
        ``distance`` with ``"core"`` seeds: the normalised distance, in (0, 1), above which
        a pixel is in an object's core.
    distance_h : float
        ``distance`` with ``"maxima"`` seeds: depth of the maxima that seed objects.
    """

    method: str = INSTANCE_FALLBACK
    threshold: float = SegmentSettings.threshold
    min_size: int = 0  # keep every object (the setting's None means "learned")
    fill_holes: bool = SegmentSettings.fill_holes
    per_slice: bool = SegmentSettings.per_slice
    h: float = INSTANCE_TUNING["h"]
    distance_seeds: str = INSTANCE_TUNING["distance_seeds"]
    distance_level: float = INSTANCE_TUNING["distance_level"]
    distance_h: float = INSTANCE_TUNING["distance_h"]

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        if not 0 <= self.threshold < 1:
            raise ValueError(f"threshold must be in [0, 1), got {self.threshold}")
        if isinstance(self.min_size, bool) or not isinstance(self.min_size, int | np.integer):
            raise TypeError(f"min_size must be an int (pixels), got {self.min_size!r}")
        if self.min_size < 0:
            raise ValueError(f"min_size must be >= 0 pixels, got {self.min_size}")
        for name in ("h", "distance_h"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.distance_seeds not in DISTANCE_SEEDS:
            raise ValueError(
                f"distance_seeds must be one of {DISTANCE_SEEDS}, got {self.distance_seeds!r}"
            )
        if not 0 < self.distance_level < 1:
            raise ValueError(f"distance_level must be in (0, 1), got {self.distance_level}")


def instances_from(
    foreground: np.ndarray,
    options: InstanceOptions | None = None,
    *,
    interior: np.ndarray | None = None,
    distance: np.ndarray | None = None,
) -> np.ndarray:
    """Label each object of a segmentation with its own id.

    Parameters
    ----------
    foreground : (Y, X) or (Z, Y, X) ndarray
        Foreground mask (bool or 0/1) or probability (float in [0, 1]).
    options : InstanceOptions, optional
        Method and clean-up; default: distance-transform watershed.
    interior : ndarray, optional
        ``boundary`` method: the interior class, mask or probability, same shape.
    distance : ndarray, optional
        ``distance`` method: the predicted distance to the object boundary, same shape.

    Returns
    -------
    (Y, X) or (Z, Y, X) ndarray of uint16 or uint32
        0 background, objects ``1..n``.

    Raises
    ------
    ValueError, TypeError
        For a class map (use :func:`instances_per_class`), probabilities outside [0, 1],
        another dimensionality, shapes that differ, or a missing ``interior``/``distance``.
    """
    options = options or InstanceOptions()
    fg = as_mask(foreground, "foreground", options.threshold)
    maps = _method_maps(fg, options, interior, distance)
    if fg.ndim == 3 and options.per_slice:
        labels = _per_slice(fg, maps, options)
    else:
        labels = _separate(fg, maps, options)
    if options.fill_holes:
        labels = fill_holes_per_object(labels)
    return sequential_ids(remove_small(labels, options.min_size))


def instances_per_class(
    classes: np.ndarray, options: InstanceOptions | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Objects of each class of a class map, ids unique over all classes.

    Returns
    -------
    labels : ndarray of uint16 or uint32
        Object ids ``1..n`` (0 background).
    class_of : (n + 1,) ndarray of int64
        The class of each id (``class_of[0] = 0``).
    """
    classes = np.asarray(classes)
    if classes.dtype.kind not in "ui":
        raise TypeError(f"classes must be an integer class map, got dtype {classes.dtype}")
    out = np.zeros(classes.shape, np.int64)
    class_of = [0]
    for value in np.unique(classes[classes > 0]):
        objects = instances_from(classes == value, options).astype(np.int64)
        out[objects > 0] = objects[objects > 0] + len(class_of) - 1
        class_of += [int(value)] * int(objects.max(initial=0))
    return sequential_ids(out), np.asarray(class_of, np.int64)


def as_mask(data: np.ndarray, name: str, threshold: float) -> np.ndarray:
    """A boolean mask from a mask (bool, 0/1) or a probability map (float in [0, 1])."""
    data = np.asarray(data)
    if data.ndim not in (2, 3):
        raise ValueError(f"{name} must be (Y, X) or (Z, Y, X), got shape {data.shape}")
    if data.dtype == bool:
        return data
    if data.dtype.kind in "ui":
        if data.size and data.max() > 1:
            values = np.unique(data)[:6].tolist()
            raise ValueError(
                f"{name} holds the values {values}...: a class map, not a foreground mask; "
                "use instances_per_class for objects per class, or pass labels > 0"
            )
        return data > 0
    if data.dtype.kind == "f":
        if data.size and not (np.nanmin(data) >= 0 and np.nanmax(data) <= 1):
            raise ValueError(f"{name} probabilities must lie in [0, 1]")
        return data > threshold
    raise TypeError(f"{name} must be bool, 0/1 integers or probabilities, got {data.dtype}")


def _filled(fg: np.ndarray) -> np.ndarray:
    """The foreground's holes filled, slice by slice for a stack (holes as a 2D network
    sees them)."""
    if fg.ndim == 2:
        return ndimage.binary_fill_holes(fg)
    return np.stack([ndimage.binary_fill_holes(plane) for plane in fg])


def _method_maps(fg: np.ndarray, options: InstanceOptions, interior, distance) -> dict:
    """The extra maps a method needs, checked against the foreground's shape."""
    wanted = {"boundary": ("interior", interior), "distance": ("distance", distance)}
    if options.method not in wanted:
        return {}
    name, data = wanted[options.method]
    if data is None:
        raise ValueError(f"method {options.method!r} needs the {name} map")
    data = np.asarray(data)
    if data.shape != fg.shape:
        raise ValueError(f"{name} shape {data.shape} != foreground shape {fg.shape}")
    if name == "distance" and data.dtype.kind not in "uif":
        raise TypeError(f"distance must be a number map, got dtype {data.dtype}")
    return {name: data}


def _per_slice(fg: np.ndarray, maps: dict, options: InstanceOptions) -> np.ndarray:
    out = np.zeros(fg.shape, np.int64)
    offset = 0
    for z in range(fg.shape[0]):
        labels = _separate(fg[z], {k: v[z] for k, v in maps.items()}, options)
        out[z] = np.where(labels > 0, labels + offset, 0)
        offset += int(labels.max(initial=0))
    return out


def _separate(fg: np.ndarray, maps: dict, options: InstanceOptions) -> np.ndarray:
    """Object ids of one 2D image or 3D volume (not yet sequential)."""
    full = np.ones((3,) * fg.ndim, bool)
    if options.method == "components" or not fg.any():
        return ndimage.label(fg, structure=full)[0].astype(np.int64)
    if options.method == "watershed":
        return _edt_watershed(fg, options)
    if options.method == "distance":
        landscape = maps["distance"].astype(float)
        if options.distance_seeds == "maxima":
            parts = _components(fg)  # labelled once for the seeds and the watershed
            seeds = _maxima(landscape, options.distance_h, fg, components=parts)
            return seeded_watershed(-landscape, seeds, fg, components=parts)
        seeds = ndimage.label((landscape >= options.distance_level) & fg, full)[0]
        return seeded_watershed(-landscape, seeds, fg)
    interior = maps["interior"]
    seeds = ndimage.label(as_mask(interior, "interior", options.threshold) & fg, full)[0]
    if interior.dtype.kind == "f":
        landscape = 1.0 - interior
    else:
        landscape = ndimage.distance_transform_edt(seeds == 0)
    return seeded_watershed(landscape, seeds, fg)


def _edt_watershed(fg: np.ndarray, options: InstanceOptions) -> np.ndarray:
    """The distance-transform watershed; with ``fill_holes``, over the foreground with its
    holes filled (a hole would make a ring of the distance transform, cut into sectors),
    then cut back to the foreground, each id's disconnected parts made objects of their own."""
    mask = _filled(fg) if options.fill_holes else fg
    edt, parts = _edt32(mask), _components(mask)  # labelled once for seeds and watershed
    seeds = _maxima(edt, options.h, mask, floor=1.0, components=parts)
    labels = seeded_watershed(-edt, seeds, mask, components=parts)
    if not options.fill_holes:
        return labels
    return label(np.where(fg, labels, 0), background=0, connectivity=fg.ndim).astype(np.int64)


def _edt32(mask: np.ndarray) -> np.ndarray:
    """The Euclidean distance to the background, as float32.

    From scipy's feature transform (the nearest background pixel of each pixel), the
    squared distance summed in integers: the same values as
    ``distance_transform_edt(mask).astype(np.float32)`` in a fifth of the time (scipy
    builds its distances in float64 over a stack of index grids). Square roots of
    integers keep their order and ties in float32, so the seeds and the watershed are
    those of float64, in half the memory, and ``h_maxima`` sorts float32 faster.
    """
    nearest = ndimage.distance_transform_edt(mask, return_distances=False, return_indices=True)
    small = sum(n * n for n in mask.shape) < 1 << 31  # int32 holds every squared distance
    squared = np.zeros(mask.shape, np.int32 if small else np.int64)
    for axis, index in enumerate(nearest):
        shape = [1] * mask.ndim
        shape[axis] = -1
        step = index.astype(squared.dtype, copy=False)  # in place: nearest is ours
        step -= np.arange(mask.shape[axis], dtype=step.dtype).reshape(shape)
        np.multiply(step, step, out=step)
        squared += step
    exact = squared.max(initial=0) < 1 << 24  # float32 holds these integers exactly
    return np.sqrt(squared.astype(np.float32 if exact else np.float64)).astype(np.float32)


def _components(fg: np.ndarray) -> tuple[np.ndarray, int]:
    """The foreground's connected components (8-connected in 2D, 26 in 3D) and their
    count, as ``ndimage.label`` gives them."""
    return ndimage.label(fg, structure=np.ones((3,) * fg.ndim, bool))


def _maxima(
    landscape: np.ndarray,
    h: float,
    fg: np.ndarray,
    floor: float = 0.0,
    components: tuple[np.ndarray, int] | None = None,
) -> np.ndarray:
    """Seeds: the h-maxima of ``landscape`` in the foreground, one id per connected peak.

    The same seeds as ``h_maxima`` over the whole image, found component by component of
    ``fg`` (background, at 0, parts them, so the h-maxima of one never depend on another):
    a component whose top is below ``h`` has none (when any component reaches ``h``);
    one whose top is below ``floor + h`` (``floor``: the least value of ``landscape`` in
    the foreground, 1 for a distance transform) has one, the pixels at its top; the
    others are done in their bounding box, as float32 (see :func:`_edt32`). The sorts
    inside ``h_maxima`` are then of a few thousand pixels instead of twice the image's.
    ``components``: :func:`_components` of ``fg`` when the caller has them.
    """
    full = np.ones((3,) * fg.ndim, bool)
    components, n = _components(fg) if components is None else components
    tops = np.zeros(n + 1, np.float32)  # each component's top (ndimage.maximum: 15x slower)
    np.maximum.at(tops, components[fg], landscape[fg].astype(np.float32, copy=False))
    if not (tops >= h).any():  # nothing reaches h: the highest peak seeds (whole image)
        masked = np.where(fg, landscape, 0).astype(np.float32, copy=False)
        peaks = h_maxima(masked, np.float32(h)).astype(bool) & fg
        return ndimage.label(peaks, structure=full)[0]
    low = (tops >= h) & (tops < floor + h)
    low[0] = False
    peaks = low[components] & (landscape.astype(np.float32, copy=False) == tops[components])
    boxes = ndimage.find_objects(components)
    for i in np.flatnonzero(tops[1:] >= floor + h):
        box = boxes[i]
        own = components[box] == i + 1
        crop = np.where(own, landscape[box], 0).astype(np.float32, copy=False)
        peaks[box] |= h_maxima(crop, np.float32(h)).astype(bool) & own
    return ndimage.label(peaks, structure=full)[0]


def seeded_watershed(
    landscape: np.ndarray,
    seeds: np.ndarray,
    fg: np.ndarray,
    *,
    components: tuple[np.ndarray, int] | None = None,
) -> np.ndarray:
    """Flood ``landscape`` from labelled ``seeds`` over the mask ``fg``.

    Foreground that no seed reaches (a component without a seed) becomes objects of its
    own (connected components), so no foreground pixel is lost.

    The result of scikit-image's ``watershed`` over the whole image, done component by
    component of ``fg`` (8-connected; the flood, 4-connected, never leaves one): a
    component with two or more seed ids in it, in its bounding box; with one, its seed's
    flood is every pixel 4-connected to the seed, no watershed needed; with none, nothing.
    ``components``: :func:`_components` of ``fg`` when the caller has them.
    """
    seeds = np.asarray(seeds)
    full = np.ones((3,) * fg.ndim, bool)
    components, n = _components(fg) if components is None else components
    labels = np.zeros(fg.shape, np.int64)
    seeded = (seeds > 0) & fg
    ids = seeds[seeded].astype(np.int64)
    span = int(ids.max(initial=0)) + 1  # (component, seed id) pairs as one integer
    pairs = np.unique(components[seeded].astype(np.int64) * span + ids)
    per_component = np.bincount(pairs // span, minlength=n + 1)
    per_component[0] = 0
    one = per_component == 1
    if one.any():  # a single seed id floods its 4-connected pieces of the component
        alone = one[components]
        pieces, _ = ndimage.label(alone)  # 4-connected, as the flood
        flood = np.zeros(int(pieces.max()) + 1, np.int64)
        inside = seeded & alone
        flood[pieces[inside]] = seeds[inside]  # pieces without a seed stay 0
        labels[alone] = flood[pieces[alone]]
    boxes = ndimage.find_objects(components)
    for i in np.flatnonzero(per_component >= 2):
        box = boxes[i - 1]
        own = components[box] == i
        markers = np.where(own, seeds[box], 0)
        flooded = watershed(landscape[box], markers=markers, mask=own)
        labels[box][own] = flooded[own]
    missed = fg & (labels == 0)
    if missed.any():
        extra, _ = ndimage.label(missed, structure=full)
        labels[missed] = extra[missed] + labels.max()
    return labels


def fill_holes_per_object(labels: np.ndarray) -> np.ndarray:
    """Background enclosed by one object becomes that object (other objects untouched)."""
    fg = labels > 0
    holes = ndimage.binary_fill_holes(fg) & ~fg
    if not holes.any():
        return labels
    labels = labels.copy()
    near = ndimage.binary_dilation(holes, structure=np.ones((3,) * labels.ndim, bool))
    boxes = ndimage.find_objects(labels)
    for i in np.unique(labels[near & fg]):
        box = boxes[i - 1]
        crop = labels[box]
        filled = ndimage.binary_fill_holes(crop == i) & (crop == 0)
        crop[filled] = i
    return labels


def remove_small(labels: np.ndarray, min_size: int) -> np.ndarray:
    """``labels`` without the objects of fewer than ``min_size`` pixels."""
    if min_size <= 1:
        return labels
    sizes = np.bincount(labels.ravel())
    small = sizes < min_size
    small[0] = False
    return np.where(small[labels], 0, labels) if small.any() else labels


def sequential_ids(labels: np.ndarray) -> np.ndarray:
    """Ids renumbered ``1..n`` in order of their value; ``uint16``, or ``uint32`` when
    ``n > 65535``."""
    values = np.unique(labels)
    values = values[values > 0]
    n = len(values)
    dtype = np.uint16 if n <= np.iinfo(np.uint16).max else np.uint32
    if n and values[-1] == n:  # already 1..n
        return labels.astype(dtype, copy=False)
    table = np.zeros(int(values[-1]) + 1 if n else 1, dtype)
    table[values] = np.arange(1, n + 1, dtype=dtype)
    return table[labels]
