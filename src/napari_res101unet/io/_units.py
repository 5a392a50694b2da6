"""Length units: one internal unit per image, conversions for writers that fix theirs.

Readers record ``metadata["unit"]`` (the unit of every spatial ``spacing``/``origin``
value; ``"mm"`` for medical formats, usually ``"µm"`` for microscopy) and
``metadata["units"]`` (one entry per axis of ``spacing``, a time unit for a 4D NIfTI's
first axis). NIfTI (as written here), NRRD and MetaImage mean millimetres, so writers
convert from other known lengths and refuse unknown ones.
"""

from __future__ import annotations

from collections.abc import Sequence

_IN_MM = {
    "mm": 1.0,
    "millimeter": 1.0,
    "millimetre": 1.0,
    "µm": 1e-3,
    "μm": 1e-3,  # Greek mu
    "um": 1e-3,
    "micron": 1e-3,
    "microns": 1e-3,
    "micrometer": 1e-3,
    "nm": 1e-6,
    "nanometer": 1e-6,
    "cm": 10.0,
    "centimeter": 10.0,
    "m": 1000.0,
    "meter": 1000.0,
    "inch": 25.4,
    "in": 25.4,
}
_CANONICAL = {1.0: "mm", 1e-3: "µm", 1e-6: "nm", 10.0: "cm", 1000.0: "m", 25.4: "inch"}
UNITLESS = (None, "", "pixel", "pixels", "px")


def mm_per(unit: str | None) -> float | None:
    """Millimetres in one ``unit``; None when the unit is not a known length."""
    if unit is None:
        return None
    return _IN_MM.get(str(unit).strip().replace("\\u00B5", "µ").lower())


def canonical(unit: str | None) -> str | None:
    """``"µm"`` for ``"micron"``, ``"um"``...; the input when unknown."""
    factor = mm_per(unit)
    return _CANONICAL.get(factor, unit) if factor is not None else unit


def common_unit(units: Sequence[str | None]) -> tuple[str | None, list[float]]:
    """One unit for several axes and the factor that converts each axis into it.

    The first known length unit of ``units`` wins (pass X first: an OME-TIFF with XY in
    µm and Z in nm is in µm); unknown units are kept only when all axes agree.
    """
    known = [mm_per(u) for u in units]
    if all(k is None for k in known):
        same = {u for u in units}
        return (same.pop() if len(same) == 1 else None), [1.0] * len(units)
    target = next(k for k in known if k is not None)
    factors = [1.0 if k is None else k / target for k in known]
    return _CANONICAL.get(target, "mm"), factors


def to_mm(values: Sequence[float], unit: str | None, fmt: str) -> tuple[float, ...]:
    """``values`` in millimetres for a format that means mm (ValueError when unknown)."""
    values = tuple(float(v) for v in values)
    if unit in UNITLESS:
        return values
    factor = mm_per(unit)
    if factor is None:
        raise ValueError(
            f"{fmt} stores millimetres; spacing in {unit!r} cannot be converted (known: "
            f"{', '.join(sorted(set(_CANONICAL.values())))}); write a TIFF instead, or give "
            "the unit"
        )
    return tuple(v * factor for v in values)
