"""Validation of settings fields (a message naming the value and what is allowed), and
:func:`settings_with`, how entry points build a settings object."""

from __future__ import annotations

import dataclasses
import math
from typing import Any


def _help(text: str, **extra: Any) -> dict[str, Any]:
    return {"help": text, **extra}


def _int(name: str, value: Any, minimum: int, *, none_ok: bool = False) -> None:
    if value is None and none_ok:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        extra = " or None" if none_ok else ""
        raise ValueError(f"{name} must be an int >= {minimum}{extra}, got {value!r}")


def _number(
    name: str, value: Any, low: float, high: float, *, open_low: bool = False, none_ok=False
) -> None:
    if value is None and none_ok:
        return
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (value > low if open_low else value >= low) and value <= high
    if not ok:
        bracket = "(" if open_low else "["
        raise ValueError(f"{name} must be a number in {bracket}{low}, {high}], got {value!r}")


def _flag(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {value!r}")


def _choice(name: str, value: Any, allowed: Any) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(str, allowed))}; got {value!r}")


def _device(value: Any) -> None:
    if not isinstance(value, str) or not value.strip():
        raise TypeError(f"device must be a string such as 'auto' or 'cuda:0', got {value!r}")


def settings_with(cls: type, settings: Any = None, fields: dict[str, Any] | None = None) -> Any:
    """``settings`` (default: ``cls()``) with ``fields`` applied: how every entry point
    builds its settings object once from a given object and keyword arguments.

    Raises
    ------
    TypeError
        ``settings`` is not a ``cls``, or a field name is not one of ``cls``'s (the message
        lists them).
    ValueError
        A value out of bounds (from the dataclass's own checks).
    """
    fields = dict(fields or {})
    known = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(fields) - set(known))
    if unknown:
        raise TypeError(
            f"unknown {cls.__name__} field(s) {', '.join(unknown)}; known: {', '.join(known)}"
        )
    if settings is None:
        return cls(**fields)
    if not isinstance(settings, cls):
        raise TypeError(f"settings must be a {cls.__name__}, got {type(settings).__name__}")
    return dataclasses.replace(settings, **fields) if fields else settings


def _is_integer(value: Any) -> bool:
    try:
        return int(value) == value and not isinstance(value, float)
    except (TypeError, ValueError):
        return False


def split_fields(fields: dict[str, Any], *classes: type) -> list[dict[str, Any]]:
    """``fields`` divided among settings classes: each name goes to the first class that
    has it (so ``tile_size`` given with ``(SegmentSettings, BlockwiseSettings)`` is the
    segmentation's).

    Raises
    ------
    TypeError
        For a name none of the classes has (the message lists the known ones).
    """
    parts: list[dict[str, Any]] = [{} for _ in classes]
    names = [[f.name for f in dataclasses.fields(cls)] for cls in classes]
    for key, value in fields.items():
        for part, known in zip(parts, names):
            if key in known:
                part[key] = value
                break
        else:
            every = sorted({n for known in names for n in known})
            raise TypeError(
                f"unknown setting {key!r}; known: {', '.join(every)} (see "
                f"{', '.join(cls.__name__ for cls in classes)})"
            )
    return parts
