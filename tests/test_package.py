"""Packaging: the manifest, lazy imports and no Qt on import."""

from __future__ import annotations

import subprocess
import sys

import napari_res101unet


def _run(code: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        encoding="utf-8",
        errors="replace",
        check=True,
    )
    return out.stdout.strip()


def test_import_pulls_in_neither_qt_nor_torch():
    code = (
        "import sys, napari_res101unet, napari_res101unet.config, napari_res101unet.registry;"
        "import napari_res101unet.viewer, napari_res101unet.preprocess.pairs;"
        "names = ('qtpy', 'PyQt6', 'PyQt5', 'torch', 'napari');"
        "print(sorted(m for m in names if m in sys.modules))"
    )
    assert _run(code) == "[]"


def test_public_api_names_resolve():
    for name in napari_res101unet.__all__:
        assert getattr(napari_res101unet, name) is not None, name
    assert callable(napari_res101unet.segment)


def test_using_the_api_does_not_import_qt():
    code = (
        "import sys, numpy as np, napari_res101unet as nr;"
        "nr.segment(np.zeros((40, 40), np.uint8), lambda x: x[:, :1]);"
        "print('qtpy' in sys.modules, 'PyQt6' in sys.modules)"
    )
    assert _run(code) == "False False"


def test_manifest_is_valid_and_names_the_widgets():
    from npe2 import PluginManifest

    manifest = PluginManifest.from_distribution("napari-res101unet")
    names = {w.display_name for w in manifest.contributions.widgets}
    assert {"Segment", "Train"} <= names
    assert manifest.contributions.readers[0].accepts_directories
    patterns = set(manifest.contributions.readers[0].filename_patterns)
    assert {"*.nii.gz", "*.nrrd", "*.tif", "*.png", "*.dcm"} <= patterns


def test_unknown_attribute_raises_attribute_error():
    import pytest

    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        napari_res101unet.nope  # noqa: B018


def _imports(tree):
    """Every ``from . import`` in a module, lazy ones too, but not ``if TYPE_CHECKING``."""
    import ast

    todo = list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING":
            continue
        if isinstance(node, ast.ImportFrom) and node.level:
            yield node
        todo.extend(ast.iter_child_nodes(node))


def _module_imports(root):
    """Imports between the package's modules, function-level (lazy) ones included."""
    import ast

    graph = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(root.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        found = set()
        for node in _imports(ast.parse(path.read_text(encoding="utf-8"))):
            base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
            target = f"{base}.{node.module}" if node.module else base
            if node.module:  # "from .x import y": x, and x.y when y is a module
                found.add(target)
            found.update(f"{target}.{a.name}" for a in node.names)
        graph[name] = found
    return {k: {v for v in vs if v in graph and v != k} for k, vs in graph.items()}


def test_no_import_cycles_between_modules():
    from pathlib import Path

    graph = _module_imports(Path(napari_res101unet.__file__).parent)
    assert "napari_res101unet.model" in graph["napari_res101unet.inference.segment"]
    state: dict[str, int] = {}

    def visit(node, stack):
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = [*stack[stack.index(nxt) :], nxt]
                raise AssertionError(f"import cycle: {' -> '.join(cycle)}")
            if state.get(nxt) is None:
                visit(nxt, [*stack, nxt])
        state[node] = 2

    for module in sorted(graph):
        if state.get(module) is None:
            visit(module, [module])
