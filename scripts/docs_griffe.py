"""A griffe extension for the API reference (``mkdocs.yml`` loads it; nothing to run).

Three things mkdocstrings cannot see on its own:

- **Settings fields.** Each field of the settings dataclasses in
  :mod:`napari_res101unet.config` documents itself in ``metadata["help"]`` (the text the
  CLI's ``--help`` shows). This extension imports the settings (no torch, no Qt) and makes
  that text the field's docstring, and the field's plain default its value, so the
  reference prints ``tile_size: int | None = None`` with its help, written once, in the
  code.
- **Defaults from the settings.** Signatures take their defaults from a settings object
  (``tile_size: int | None = _S.tile_size`` where ``_S = SegmentSettings()``); the
  reference shows the value instead (``= None``).
- **Markdown, not reST.** Docstrings cross-reference with
  ``:func:`~napari_res101unet.segment``` and the like; Markdown would print the role. They
  become inline code (the last component when the target starts with ``~``); a wrapped
  line that starts with ``>`` stays text instead of becoming a quote.
"""

from __future__ import annotations

import dataclasses
import html
import importlib
import re
from typing import Any

import griffe

CONFIG = "napari_res101unet.config"
ROLE = re.compile(r":(?:py:)?(?:func|class|mod|meth|attr|data|obj|exc|const):`(~?)([^`]+)`")
RST_LITERAL = re.compile(r"(?<=\S)::$", re.M)  # "...like this::" before a code block
QUOTE = re.compile(r"^(\s*)>(?!>)", re.M)  # "(label\n> 0)" is not a block quote
ATTRIBUTE = re.compile(r"^(\w+)\.(\w+)$")  # a default such as ``_S.tile_size``


def _role(match: re.Match) -> str:
    short, target = match.groups()
    return f"`{target.rsplit('.', 1)[-1] if short else target}`"


def markdown_docstring(text: str) -> str:
    """``text`` with Sphinx roles as inline code, ``::`` literal markers as ``:`` and no
    line read as a block quote."""
    return QUOTE.sub(r"\1\\>", RST_LITERAL.sub(":", ROLE.sub(_role, text)))


def _default(f: dataclasses.Field) -> str | None:
    if f.default is not dataclasses.MISSING:
        return repr(f.default)
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f"{f.default_factory.__name__}()"  # type: ignore[misc]
    return None


def _settings_defaults() -> dict[str, Any]:
    """``{"SegmentSettings()": SegmentSettings(), ...}``: each settings class made with no
    arguments, keyed by how a module writes that call (plus the ``*_DEFAULTS`` names)."""
    config = importlib.import_module(CONFIG)
    made = {}
    for name in config.__all__:
        value = getattr(config, name)
        if isinstance(value, type) and dataclasses.is_dataclass(value):
            try:
                made[f"{name}()"] = value()
            except TypeError:  # a class with required fields has no defaults object
                continue
        elif dataclasses.is_dataclass(value):
            made[name] = value
    return made


def _functions(obj: griffe.Object):
    for member in obj.members.values():
        if member.is_alias:
            continue
        if member.is_function:
            yield member
        elif member.is_class or member.is_module:
            yield from _functions(member)


class SettingsFields(griffe.Extension):
    """Field help as docstrings, defaults as values, Markdown-safe docstrings."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        """Parameter defaults such as ``_S.tile_size`` become the value they stand for."""
        made = _settings_defaults()
        for function in _functions(pkg):
            for parameter in function.parameters:
                match = ATTRIBUTE.match(str(parameter.default or ""))
                holder = match and function.module.members.get(match.group(1))
                if not holder:
                    continue
                source = holder.target_path.rsplit(".", 1)[-1] if holder.is_alias else None
                key = source or str(getattr(holder, "value", ""))
                if key in made and hasattr(made[key], match.group(2)):
                    parameter.default = repr(getattr(made[key], match.group(2)))

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = markdown_docstring(obj.docstring.value)

    def on_class_members(self, *, cls: griffe.Class, **kwargs: Any) -> None:
        if not cls.path.startswith(CONFIG + "."):
            return
        real = getattr(importlib.import_module(cls.module.path), cls.name, None)
        if real is None or not dataclasses.is_dataclass(real):
            return
        for f in dataclasses.fields(real):
            attr = cls.members.get(f.name)
            help_text = f.metadata.get("help")
            if attr is None or not help_text:
                continue
            attr.docstring = griffe.Docstring(html.escape(help_text, quote=False))
            attr.docstring.parent = attr
            value = _default(f)
            if value is not None:
                attr.value = value
