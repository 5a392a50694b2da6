"""Res101_UNet: segmentation-models-pytorch's ``Unet`` with a ResNet-101 encoder.

Every model built here carries a :class:`ModelSpec` (``model.spec``) describing everything
inference needs, so a checkpoint is self-describing.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .config import ARCHITECTURE, DECODER_CHANNELS, ENCODER_NAME, INSTANCE_HEADS, NORMALIZATIONS
from .errors import summarize
from .weights import (
    ENCODER_WEIGHTS_HELP,
    check_imagenet_reachable,
    load_encoder_weights,
    normalise_weights_arg,
)


@dataclass
class ModelSpec:
    """What inference and training need to know about a Res101_UNet.

    Attributes
    ----------
    in_channels : int
        Channels of the network input (3 for RGB; grayscale images are replicated to 3).
    classes : int
        Output channels: 1 (sigmoid foreground) or the number of classes with background
        (2 for binary, softmax).
    class_names : list of str
        One name per output class (background first when ``classes > 1``).
    normalization : dict
        ``{"mode": one of NORMALIZATIONS, ...parameters}`` applied to every input.
    tile_size : int or None
        Patch size used in training (a hint for inference planning).
    spacing : list of float or None
        Pixel spacing of the training data (Y, X); inference resamples images of another
        spacing to it (None: unknown, never resampled).
    intensity : dict or None
        Percentile landmarks per channel of the raw training inputs (see
        :mod:`napari_res101unet.preprocess.intensity`); None for earlier checkpoints.
    encoder_weights : str
        Where the encoder's initial weights came from (``random``, ``imagenet``, ``file:...``).
    decoder_channels : list of int
        Decoder widths of the smp Unet.
    training : dict or None
        Settings and per-epoch history when the model was trained by this plugin.
    instance_head : {"boundary"} or None
        What the network learned to separate touching objects (see
        :data:`~napari_res101unet.config.INSTANCE_HEADS`); None: a semantic model.
    name : str
        Display name.
    """

    in_channels: int = 3
    classes: int = 2
    class_names: list[str] = field(default_factory=lambda: ["background", "foreground"])
    normalization: dict = field(default_factory=lambda: {"mode": "auto"})
    tile_size: int | None = None
    spacing: list[float] | None = None
    intensity: dict | None = None
    encoder_weights: str = "random"
    decoder_channels: list[int] = field(default_factory=lambda: list(DECODER_CHANNELS))
    training: dict | None = None
    instance_head: str | None = None
    name: str = "Res101_UNet"
    architecture: str = ARCHITECTURE
    encoder: str = ENCODER_NAME

    def __post_init__(self) -> None:
        check_int("in_channels", self.in_channels, 1, SPEC_LIMITS["in_channels"])
        check_int("classes", self.classes, 1, SPEC_LIMITS["classes"])
        check_spec_fields(self)
        if len(self.class_names) != self.n_labels:
            self.class_names = default_class_names(self.classes, self.class_names)
        mode = self.normalization.get("mode") if isinstance(self.normalization, dict) else None
        if mode not in NORMALIZATIONS:
            raise ValueError(
                f"normalization mode {mode!r} is not known; allowed: {', '.join(NORMALIZATIONS)}"
            )
        if self.architecture != ARCHITECTURE or self.encoder != ENCODER_NAME:
            raise ValueError(
                f"this plugin runs {ARCHITECTURE} (smp Unet with encoder {ENCODER_NAME!r}); "
                f"got architecture {self.architecture!r} with encoder {self.encoder!r}"
            )

    @property
    def n_labels(self) -> int:
        """Number of label values the model predicts, background included."""
        return max(self.classes, 2)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelSpec:
        """The spec a checkpoint's JSON describes, validated and bounded (see
        :data:`SPEC_LIMITS`) before anything is built from it.

        Raises
        ------
        TypeError, ValueError
            For a value of the wrong type or out of bounds, or nesting too deep.
        """
        if not isinstance(data, dict):
            raise TypeError(f"a model spec must be a JSON object, got {type(data).__name__}")
        check_depth(data, SPEC_LIMITS["depth"])
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            warnings.warn(f"ignoring unknown model spec fields {unknown}", stacklevel=2)
        return cls(**{k: v for k, v in data.items() if k in known})


def default_class_names(classes: int, given: list[str] | None = None) -> list[str]:
    """Class names for ``classes`` outputs, keeping the given ones where they fit."""
    n = max(classes, 2)
    names = list(given or [])[:n]
    base = ["background", "foreground"] if n == 2 else ["background"]
    for i in range(len(names), n):
        names.append(base[i] if i < len(base) else f"class {i}")
    return names


def build_model(
    in_channels: int = 3,
    classes: int = 2,
    encoder_weights: str | Path | None = None,
    *,
    class_names: list[str] | None = None,
    normalization: str | dict = "auto",
    tile_size: int | None = None,
    spec: ModelSpec | None = None,
) -> torch.nn.Module:
    """Build Res101_UNet carrying its :class:`ModelSpec` as ``model.spec``.

    Parameters
    ----------
    in_channels : int
        Input channels (1 grayscale, 3 RGB, or any number for multi-channel images).
    classes : int
        Output classes including background (2 for a binary mask), or 1 for a sigmoid head.
    encoder_weights : None, "imagenet" or path
        None: random initialisation. ``"imagenet"``: smp's pretrained ResNet-101 (needs the
        internet once; cached afterwards). A path: a local torchvision/timm ResNet-101 file,
        mapped onto the encoder and verified.
    class_names : list of str, optional
        Names of the classes (background first).
    normalization : str or dict
        Input normalisation mode (see :data:`napari_res101unet.config.NORMALIZATIONS`).
    tile_size : int, optional
        Patch size the model is trained with.
    spec : ModelSpec, optional
        A complete spec (from a checkpoint); overrides the other arguments.

    Returns
    -------
    torch.nn.Module
        The smp ``Unet`` in eval mode on the CPU, with ``.spec``.
    """
    if spec is None:
        check_int("in_channels", in_channels, 1)
        check_int("classes", classes, 1)
        norm = {"mode": normalization} if isinstance(normalization, str) else dict(normalization)
        spec = ModelSpec(
            in_channels=in_channels,
            classes=classes,
            class_names=default_class_names(classes, class_names),
            normalization=norm,
            tile_size=tile_size,
        )
    import segmentation_models_pytorch as smp

    weights = normalise_weights_arg(encoder_weights)
    if weights == "imagenet":
        check_imagenet_reachable()
    first_in = 3 if weights is not None else spec.in_channels
    try:
        model = smp.Unet(
            encoder_name=ENCODER_NAME,
            encoder_weights="imagenet" if weights == "imagenet" else None,
            in_channels=first_in,
            classes=spec.classes,
            decoder_channels=tuple(spec.decoder_channels),
        )
    except Exception as exc:
        if weights != "imagenet":
            raise
        raise ValueError(
            "could not get ImageNet weights for ResNet-101 from smp's source "
            f"(Hugging Face 'smp-hub/{ENCODER_NAME}.imagenet'): {type(exc).__name__}: "
            f"{summarize(exc)}. Offline? {ENCODER_WEIGHTS_HELP}."
        ) from None
    if weights == "imagenet":
        spec.encoder_weights = "imagenet"
    elif weights is not None:
        report = load_encoder_weights(model, weights)
        spec.encoder_weights = f"file:{Path(weights).name} (sha256 {report['sha256'][:12]})"
    if weights is not None and spec.in_channels != 3:
        model.encoder.set_in_channels(spec.in_channels, pretrained=True)
    model.spec = spec
    return model.eval()


def model_spec(model: Any) -> ModelSpec:
    """The spec of ``model``; a plain smp Unet without one gets a default spec."""
    spec = getattr(model, "spec", None)
    if isinstance(spec, ModelSpec):
        return spec
    raise TypeError(
        f"{type(model).__name__} carries no Res101_UNet spec; build it with build_model() "
        "or load it with load_model()"
    )


SPEC_LIMITS = {
    "in_channels": 512,
    "classes": 1024,
    "decoder_width": 1024,
    "decoder_blocks": 5,
    "tile_size": 1 << 16,
    "text": 1000,
    "depth": 32,
}
"""Bounds of a :class:`ModelSpec` (a checkpoint's header is checked against them before
any network is built, so a forged header cannot ask for gigabytes)."""


def check_int(name: str, value: Any, minimum: int, maximum: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r:.80}")
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"{minimum}..{maximum}" if maximum is not None else f">= {minimum}"
        raise ValueError(f"{name} must be {bound}, got {value}")


def check_spec_fields(spec: ModelSpec) -> None:
    """Types and bounds of the fields besides the channel counts."""
    text = SPEC_LIMITS["text"]
    widths = spec.decoder_channels
    if not isinstance(widths, (list, tuple)) or len(widths) != SPEC_LIMITS["decoder_blocks"]:
        raise ValueError(f"decoder_channels must be a list of 5 ints, got {widths!r:.80}")
    for w in widths:
        check_int("a decoder width", w, 1, SPEC_LIMITS["decoder_width"])
    names = spec.class_names
    if not isinstance(names, list) or len(names) > SPEC_LIMITS["classes"]:
        raise ValueError(f"class_names must be a list of at most {SPEC_LIMITS['classes']}")
    if not all(isinstance(n, str) and len(n) <= text for n in names):
        raise TypeError(f"class_names must be strings of at most {text} characters")
    if spec.tile_size is not None:
        check_int("tile_size", spec.tile_size, 1, SPEC_LIMITS["tile_size"])
    if spec.spacing is not None and (
        not isinstance(spec.spacing, (list, tuple))
        or len(spec.spacing) > 8
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in spec.spacing)
    ):
        raise ValueError(f"spacing must be a list of numbers, got {spec.spacing!r:.80}")
    from .preprocess.intensity import check_record

    check_record(spec.intensity)
    for key in ("name", "encoder_weights", "architecture", "encoder"):
        value = getattr(spec, key)
        if not isinstance(value, str) or len(value) > text:
            raise TypeError(f"{key} must be a string of at most {text} characters")
    if spec.instance_head is not None and spec.instance_head not in INSTANCE_HEADS:
        raise ValueError(
            f"instance_head must be one of {INSTANCE_HEADS} or None, "
            f"got {spec.instance_head!r:.80}"
        )
    if spec.training is not None and not isinstance(spec.training, dict):
        raise TypeError(f"training must be a JSON object, got {type(spec.training).__name__}")


def check_depth(value: Any, limit: int) -> None:
    """Refuse JSON nested deeper than ``limit`` (iteratively: no RecursionError)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            raise ValueError(f"the spec is nested deeper than {limit} levels")
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
