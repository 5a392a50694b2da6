"""Objects from a model's probabilities, by what its instance head learned.

:func:`instances_for_head` takes the probabilities of a checkpoint's classes (what
``segment(..., return_probabilities=True)`` gives) and its ``spec.instance_head``, and calls
:func:`~.instances.instances_from` with the method that head implies:

=================  ==========================================  ============================
``instance_head``  probabilities                               method
=================  ==========================================  ============================
None               ``(Y, X)`` foreground (a binary model's     ``watershed`` (distance
                   output as ``segment`` gives it)             transform) or ``components``
``"boundary"``     ``(3, Y, X)`` background / interior /       ``boundary``: interior seeds
                   contour                                     flooded over interior +
                                                               contour
``"distance"``     ``(1 + n, Y, X)`` background / ``n`` bins   ``distance``: the cores
                   of the normalised distance (bin ``k``:      (expected distance >= 0.5)
                   ``(k-1)/n < d <= k/n``)                     flooded over the foreground
=================  ==========================================  ============================

(``Z`` before ``Y`` for stacks.) A distance head's map is the expected distance given
foreground, ``sum_k p_k (k - 1/2) / n / (1 - p_0)``. Used by the object benchmark and by
``segment``.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..config import INSTANCE_CLASS_NAMES
from .instances import InstanceOptions, instances_from

HEAD_METHODS = {"boundary": "boundary", "distance": "distance"}
"""The method of each instance head (a model without one: ``watershed`` or
``components``, as the options say)."""
SEMANTIC_METHODS = ("watershed", "components")
INTERIOR = INSTANCE_CLASS_NAMES.index("interior")

__all__ = ["HEAD_METHODS", "bin_distance", "expected_distance", "instances_for_head"]


def instances_for_head(
    probabilities: np.ndarray,
    instance_head: str | None = None,
    options: InstanceOptions | None = None,
) -> np.ndarray:
    """One id per object from a model's class probabilities.

    Parameters
    ----------
    probabilities : ndarray of float in [0, 1]
        The model's output (see the table in the module notes): for ``instance_head``
        None the foreground ``(Y, X)`` / ``(Z, Y, X)``; ``(3,
        *spatial)`` for ``"boundary"``; ``(1 + n, *spatial)`` for ``"distance"``.
    instance_head : {None, "boundary", "distance"}
        ``spec.instance_head`` of the model.
    options : InstanceOptions, optional
        Threshold, ``min_size``, ``fill_holes``, ``per_slice`` and seed depths. Its
        ``method`` applies to a model without a head (``watershed``, the default, or
        ``components``); a head decides its own method.

    Returns
    -------
    ndarray of uint16 or uint32, spatial shape
        0 background, objects ``1..n``.

    Raises
    ------
    ValueError
        For an unknown head, probabilities of the wrong shape or outside [0, 1], or
        ``boundary``/``distance`` asked of a model without that head. (Objects of a
        multi-class model come per class: ``instances_per_class`` on its class map.)
    """
    options = options or InstanceOptions()
    if instance_head is not None and instance_head not in HEAD_METHODS:
        raise ValueError(
            f"instance_head must be None or one of {tuple(HEAD_METHODS)}, got {instance_head!r}"
        )
    p = _probabilities(probabilities)
    if instance_head is None:
        return _semantic(p, options)
    method = HEAD_METHODS[instance_head]
    wanted = len(INSTANCE_CLASS_NAMES) if instance_head == "boundary" else "1 + n (n >= 2)"
    if p.ndim not in (3, 4) or (
        p.shape[0] != wanted if instance_head == "boundary" else p.shape[0] < 3
    ):
        raise ValueError(
            f"a {instance_head} head gives {wanted} channels first, (K, Y, X) or (K, Z, Y, "
            f"X); got probabilities of shape {p.shape}"
        )
    options = dataclasses.replace(options, method=method)
    foreground = np.clip(1.0 - p[0], 0.0, 1.0)
    if instance_head == "boundary":
        return instances_from(foreground, options, interior=p[INTERIOR])
    return instances_from(foreground, options, distance=expected_distance(p))


def expected_distance(p: np.ndarray) -> np.ndarray:
    """A distance head's ``(1 + n, ...)`` probabilities as the expected normalised
    distance given foreground (bin centres ``(k - 1/2) / n``), 0 where the background
    takes everything."""
    n = p.shape[0] - 1
    centres = _bin_centres(n)
    weighted = np.tensordot(centres, p[1:], axes=(0, 0))
    total = p[1:].sum(axis=0)
    return np.divide(weighted, total, out=np.zeros_like(weighted), where=total > 1e-6)


def bin_distance(bins: np.ndarray, n: int) -> np.ndarray:
    """A distance head's argmax labels (0 background, bin ``1..n``) as the normalised
    distance at each bin's centre (as :func:`expected_distance` weighs them), 0 outside."""
    centres = np.concatenate([[0.0], _bin_centres(n)]).astype(np.float32)
    return centres[np.clip(bins, 0, n)]


def _bin_centres(n: int) -> np.ndarray:
    return (np.arange(1, n + 1) - 0.5) / n


def _semantic(p: np.ndarray, options: InstanceOptions) -> np.ndarray:
    if options.method not in SEMANTIC_METHODS:
        raise ValueError(
            f"method {options.method!r} needs a model with that instance head; a semantic "
            f"model gives objects by {' or '.join(SEMANTIC_METHODS)}"
        )
    if p.ndim == 4:
        raise ValueError(
            f"a model without an instance head gives the foreground probability of the "
            f"image's spatial shape; got {p.shape} (objects of a multi-class model come per "
            "class: postprocess.instances.instances_per_class on its class map)"
        )
    return instances_from(p, options)


def _probabilities(probabilities: np.ndarray) -> np.ndarray:
    p = np.asarray(probabilities)
    if p.dtype.kind != "f":
        raise TypeError(f"probabilities must be floats in [0, 1], got dtype {p.dtype}")
    if p.ndim not in (2, 3, 4):
        raise ValueError(f"probabilities must be 2D to 4D, got shape {p.shape}")
    if p.size and not (np.nanmin(p) >= 0.0 and np.nanmax(p) <= 1.0):
        raise ValueError("probabilities must lie in [0, 1]")
    return p
