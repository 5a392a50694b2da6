"""Bounds and types of a :class:`~napari_res101unet.model.ModelSpec`, checked before any
network is built from a checkpoint's header (pure Python: no torch)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .model import ModelSpec

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
    from .inference.intensity import check_record

    check_record(spec.intensity)
    for key in ("name", "encoder_weights", "architecture", "encoder"):
        value = getattr(spec, key)
        if not isinstance(value, str) or len(value) > text:
            raise TypeError(f"{key} must be a string of at most {text} characters")
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
