"""Scoring label files made by any tool (Cellpose, StarDist, QuPath exports, this plugin)
against ground-truth masks.

Files are paired by name as ``train`` pairs images with masks (:func:`match_masks`):
a prediction ``<stem>`` or ``<stem><tag>`` goes with a mask ``<stem>`` or
``<stem><tag>``, the tags being :data:`~napari_res101unet.io.folders.MASK_TAGS` and, for
predictions, also :data:`PREDICTION_TAGS` (StarDist's ``_labels``, Cellpose's
``_cp_masks``...). Every file is read with :func:`~napari_res101unet.io.read_image` and
normalised as a training mask is (0/255 -> 0/1, JPEG > 127, colour -> first channel);
spacing comes from the files (the mask's when it has a unit, else the prediction's).

Before any score is computed, all problems are listed in one ``ValueError``: files
without a partner, pairs of different shapes, spacings that disagree.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ..io._formats import READABLE, suffix
from ..io.folders import MASK_TAGS, read_mask_file
from .matching import THRESHOLDS, check_thresholds
from .objects import object_tally, pooled_scores
from .surface import mean_surface_scores, surface_scores

PREDICTION_TAGS = (*MASK_TAGS, "_cp_masks", "_pred", "_prediction", "_instances")
"""Suffixes a prediction's stem may add to its mask's stem."""
MAX_LISTED = 8
CACHE_BYTES = 1 << 30
"""Label images kept in memory between the shape check and the scoring (re-read above)."""


def pair_label_files(predictions: Path, masks: Path) -> list[tuple[Path, Path]]:
    """``(prediction, mask)`` files of two folders, paired by name (see the module notes).

    Raises
    ------
    ValueError
        When a folder is missing or holds no label files, or when files have no partner
        or more than one (all of them listed).
    """
    found = {}
    for role, folder in (("predictions", predictions), ("masks", masks)):
        folder = Path(folder)
        if not folder.is_dir():
            raise ValueError(f"{role}: {folder} is not a folder")
        found[role] = _stems(folder)
        if not found[role]:
            raise ValueError(f"{role}: {folder} holds no label files ({', '.join(READABLE)})")
    preds, used, pairs, problems = found["predictions"], set(), [], []
    for stem, mask in found["masks"].items():
        options = [p for p in _partner_stems(stem) if p in preds]
        if len(options) > 1 and stem in options:
            options = [stem]
        if len(options) == 1:
            pairs.append((preds[options[0]], mask))
            used.add(options[0])
        elif options:
            problems.append(f"mask {mask.name} matches several predictions: {options}")
        else:
            problems.append(f"mask {mask.name} has no prediction")
    problems += [f"prediction {p.name} has no mask" for s, p in preds.items() if s not in used]
    if problems:
        raise ValueError(_listing("label files without a partner", problems))
    return pairs


def _stems(folder: Path) -> dict[str, Path]:
    stems = {}
    for path in sorted(folder.iterdir()):
        ext = suffix(path)
        if path.is_file() and not path.name.startswith(".") and ext in READABLE:
            stems[path.name[: -len(ext)]] = path
    return stems


def _partner_stems(mask_stem: str) -> list[str]:
    """Prediction stems that may go with a mask stem, the mask's own stem first."""
    bases = [mask_stem] + [
        mask_stem[: -len(t)]
        for t in MASK_TAGS[1:]
        if mask_stem.endswith(t) and len(mask_stem) > len(t)
    ]
    return list(dict.fromkeys(base + tag for base in bases for tag in PREDICTION_TAGS))


def _listing(what: str, problems: list[str]) -> str:
    shown = "; ".join(problems[:MAX_LISTED])
    more = f"; and {len(problems) - MAX_LISTED} more" if len(problems) > MAX_LISTED else ""
    return f"{len(problems)} {what}: {shown}{more}"


class ScoreSet:
    """Object and surface scores accumulated image by image (files or a model's labels).

    Parameters
    ----------
    objects, surface : bool
        Which scores to compute (see :func:`score_files`).
    thresholds : sequence of float
        IoU thresholds of the matching.
    objects_from : {"auto", "components", "instances"}
        How label images become objects.
    """

    def __init__(
        self,
        *,
        objects: bool = True,
        surface: bool = False,
        thresholds: Sequence[float] = THRESHOLDS,
        objects_from: str = "auto",
    ) -> None:
        if not (objects or surface):
            raise ValueError("nothing to score: ask for objects, surface or both")
        self.objects, self.surface = objects, surface
        self.thresholds = check_thresholds(thresholds)
        self.objects_from = objects_from
        self.tallies: list = []
        self.per_case: list[dict] = []
        self.sources: list[dict] = []

    def add(self, pred: np.ndarray, truth: np.ndarray, spacing, names: dict) -> dict:
        """Score one image; returns its entry (scores and object counts) for ``per_image``."""
        entry: dict = {}
        if self.objects:
            tally = object_tally(
                pred, truth, objects_from=self.objects_from, thresholds=self.thresholds
            )
            self.tallies.append(tally)
            self.sources.append(tally.objects_from)
            entry.update(tally.scores())
        if self.surface:
            case = _surface_case(pred, truth, spacing)
            self.per_case.append({**names, **case})
            entry.update({k: case[k] for k in ("hd95_mm", "assd_mm", "empty")})
            entry["surface_dice"] = case["dice"]
        return entry

    def summary(self, spacing_unit: str) -> dict:
        """The pooled object scores and the surface means (see :func:`score_files`)."""
        result: dict = {}
        if self.objects:
            result.update(pooled_scores(self.tallies))
            result["objects_from"] = {
                side: _one_or_mixed(s[side] for s in self.sources)
                for side in ("prediction", "truth")
            }
        if self.surface:
            means = mean_surface_scores(
                [{"dice": c["dice"], "hd95": c["hd95_mm"], "assd": c["assd_mm"]}
                 for c in self.per_case]
            )  # fmt: skip
            result.update(dice=means["dice"], hd95_mm=means["hd95"], assd_mm=means["assd"])
            result.update(spacing_unit=spacing_unit, per_case=self.per_case)
        return result


def score_files(
    predictions: Path,
    masks: Path,
    *,
    objects: bool = True,
    surface: bool = False,
    thresholds: Sequence[float] = THRESHOLDS,
    objects_from: str = "auto",
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Score the label files of ``predictions`` against the masks of ``masks``.

    Parameters
    ----------
    predictions, masks : Path
        Folders of label images (2D or 3D, any format :func:`read_image` reads).
    objects : bool
        GlaS object F1/Dice/Hausdorff and IoU matching (:mod:`.objects`).
    surface : bool
        Dice, HD95 and ASSD per case in millimetres (:mod:`.surface`).
    thresholds : sequence of float
        IoU thresholds of the matching.
    objects_from : {"auto", "components", "instances"}
        How label images become objects (binary -> 8-connected components by default).
    progress : callable, optional
        ``progress(done, total)`` after each pair.

    Returns
    -------
    dict
        ``n_images``; with ``objects``: ``object_f1``, ``object_dice``,
        ``object_hausdorff`` pooled over the set, the pooled ``tp``/``fp``/``fn``/
        ``n_pred``/``n_true``, ``matching`` (pooled, per threshold) and ``objects_from``;
        with ``surface``: ``dice``, ``hd95_mm``, ``assd_mm`` (means over cases),
        ``spacing_unit`` (``"mm"``, or ``"pixel"`` when no file has a physical unit) and
        ``per_case``; always ``per_image``: the file names and each image's scores.

    Raises
    ------
    ValueError
        Listing every file without a partner, every pair of different shapes and every
        spacing conflict, before anything is scored.
    """
    scores = ScoreSet(
        objects=objects, surface=surface, thresholds=thresholds, objects_from=objects_from
    )
    pairs = pair_label_files(predictions, masks)
    cached, spacings, unit = _check_pairs(pairs, surface)
    per_image = []
    for k, (pred_path, mask_path) in enumerate(pairs):
        pred, truth = cached[k] or (read_mask_file(pred_path)[0], read_mask_file(mask_path)[0])
        names = {"prediction": pred_path.name, "mask": mask_path.name}
        per_image.append({**names, **scores.add(pred, truth, spacings[k], names)})
        if progress is not None:
            progress(k + 1, len(pairs))
    return {"n_images": len(pairs), **scores.summary(unit), "per_image": per_image}


def _check_pairs(pairs, surface: bool) -> tuple[list, list, str]:
    """Read every pair once: shapes and spacings checked, small sets kept in memory."""
    cached, spacings, problems, kept = [], [], [], 0
    for pred_path, mask_path in pairs:
        pred, pred_spacing = read_mask_file(pred_path)
        truth, truth_spacing = read_mask_file(mask_path)
        if pred.shape != truth.shape:
            problems.append(f"{pred_path.name} {pred.shape} vs {mask_path.name} {truth.shape}")
        spacing = truth_spacing or pred_spacing
        if pred.shape == truth.shape and _disagree(pred_spacing, truth_spacing):
            problems.append(
                f"{pred_path.name} pixel size {pred_spacing} mm vs "
                f"{mask_path.name} {truth_spacing} mm"
            )
        spacings.append(spacing)
        kept += pred.nbytes + truth.nbytes
        cached.append((pred, truth) if kept <= CACHE_BYTES else None)
    if problems:
        raise ValueError(_listing("label file pairs differ in shape or spacing", problems))
    known = [s is not None for s in spacings]
    if surface and any(known) and not all(known):
        missing = [m.name for (_, m), k in zip(pairs, known) if not k]
        raise ValueError(
            _listing(
                "masks (and their predictions) have no physical pixel size while others do; "
                "surface distances of one set need one unit",
                missing,
            )
        )
    return cached, spacings, "mm" if all(known) else "pixel"


def _disagree(a: tuple | None, b: tuple | None) -> bool:
    """Whether two known pixel sizes differ (by more than 0.1 %)."""
    return a is not None and b is not None and not np.allclose(a, b, rtol=1e-3)


def _surface_case(pred, truth, spacing) -> dict:
    scores = surface_scores(pred, truth, spacing)
    return {
        "dice": scores["dice"],
        "hd95_mm": scores["hd95"],
        "assd_mm": scores["assd"],
        "empty": scores["empty"],
        "spacing": list(spacing) if spacing is not None else None,
    }


def _one_or_mixed(values) -> str:
    distinct = sorted(set(values))
    return distinct[0] if len(distinct) == 1 else "mixed: " + " / ".join(distinct)
