"""Objects from a network's labels, as :class:`~napari_res101unet.config.SegmentSettings`
ask (``instances=True``): what ``segment``, the block runner and the engine call.

The method: ``instance_method="auto"`` is the model's instance head when its checkpoint
records one: ``boundary`` (classes background / interior / contour: the interior seeds a
watershed over interior + contour) or ``distance`` (background and ``n`` bins of the
distance to the object's edge: each bin's centre is the distance map, seeded at the
objects' cores); else the distance-transform watershed; ``components`` and
``watershed`` may be asked of any model. Multi-class models (more than one foreground
class, no instance head) give objects per class (:func:`~.instances.instances_per_class`):
a gland of class 1 and a touching one of class 2 are two objects, ids unique over all
classes. Objects smaller than ``min_object_size`` pixels are dropped; None uses the
smallest plausible size the model recorded from its training objects (its
``min_object_size``; 0 when it records none).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..config import INSTANCE_FALLBACK, INSTANCE_HEADS, SegmentSettings
from .from_model import INTERIOR, bin_distance
from .instances import InstanceOptions, instances_from, instances_per_class

__all__ = ["instance_options", "min_size_of", "objects_from_labels"]


def min_size_of(settings: SegmentSettings, spec: Any) -> int:
    """The smallest object kept, in pixels: the setting, else the model's learned size,
    else 0."""
    if settings.min_object_size is not None:
        return int(settings.min_object_size)
    learned = getattr(spec, "min_object_size", None)
    return int(learned) if learned else 0


def instance_options(settings: SegmentSettings, spec: Any = None) -> InstanceOptions:
    """The :class:`~.instances.InstanceOptions` that ``settings`` and a model's spec ask
    for (``spec`` may be None: no instance head, no learned size)."""
    head = getattr(spec, "instance_head", None)
    method = settings.instance_method
    if method == "auto":
        method = head or INSTANCE_FALLBACK
    if method in INSTANCE_HEADS and head != method:
        raise ValueError(
            f"instance_method {method!r} needs a model trained with a {method} head "
            f"(train --instances --instance-head {method}); this model has "
            f"{'a ' + head + ' head' if head else 'none'}: use auto, watershed or components"
        )
    return InstanceOptions(
        method=method,
        threshold=settings.threshold,
        min_size=min_size_of(settings, spec),
        fill_holes=settings.fill_holes,
        per_slice=settings.per_slice,
    )


def objects_from_labels(
    labels: np.ndarray, settings: SegmentSettings, spec: Any = None
) -> tuple[np.ndarray, str]:
    """Object ids from a network's class labels.

    Parameters
    ----------
    labels : (Y, X) or (Z, Y, X) integer ndarray
        The network's labels: 0 background, 1.. classes (a boundary head: 1 interior,
        2 contour).
    settings : SegmentSettings
        ``instance_method``, ``per_slice`` (3D: objects per slice, else in 3D),
        ``min_object_size``, ``fill_holes``.
    spec : ModelSpec, optional
        The model's spec: its ``instance_head``, ``min_object_size`` and class count.

    Returns
    -------
    objects : ndarray of uint16 or uint32
        0 background, objects ``1..n`` (uint32 when n > 65,535).
    note : str
        What was done, for the result's notes (``"37 objects (watershed, >= 12 px)"``).
    """
    options = instance_options(settings, spec)
    labels = np.asarray(labels)
    if labels.dtype == bool:
        labels = labels.view(np.uint8)
    if labels.dtype.kind not in "ui":
        raise TypeError(f"labels must be an integer class map, got dtype {labels.dtype}")
    if labels.ndim not in (2, 3):
        raise ValueError(f"labels must be (Y, X) or (Z, Y, X), got shape {labels.shape}")
    per_class = ""
    if options.method == "boundary":
        objects = instances_from(labels > 0, options, interior=labels == INTERIOR)
    elif options.method == "distance":  # bin k of n: the distance at the bin's centre
        bins = max(int(getattr(spec, "classes", 2)) - 1, 1)
        objects = instances_from(labels > 0, options, distance=bin_distance(labels, bins))
    elif getattr(spec, "instance_head", None) is not None:  # contour is foreground too
        objects = instances_from(labels > 0, options)
    elif labels.size and int(labels.max()) > 1:
        objects, _ = instances_per_class(labels, options)
        per_class = ", per class"
    else:
        objects = instances_from(labels > 0, options)
    where = " per slice" if options.per_slice and labels.ndim == 3 else ""
    size = f", >= {options.min_size} px" if options.min_size > 1 else ""
    count = int(objects.max(initial=0))
    return objects, f"{count} objects ({options.method}{per_class}{where}{size})"
