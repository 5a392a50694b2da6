"""Packaging: the manifest, lazy imports and no Qt on import."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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


PACKAGE = Path(napari_res101unet.__file__).parent
PUBLIC_ENTRY_POINTS = {
    "inference/segment.py": {"run_segmentation"},
    "inference/blockwise.py": {"segment_blocks"},
    "training/run.py": {"train"},
    "training/refine.py": {"refine"},
    "viewer/segment.py": {"segment_layer"},
}
"""Entry points that keep their keyword arguments for users (each builds its settings
object once); every other function takes settings objects and at most 10 parameters."""


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "<package>"


def test_no_cycle_between_packages():
    """Each subpackage and top-level module is a unit; no unit imports another that imports
    it back, lazy (function-level) imports included."""
    graph: dict[str, set[str]] = {}
    for module, targets in _module_imports(PACKAGE).items():
        graph.setdefault(_unit(module), set()).update(
            _unit(t) for t in targets if _unit(t) != _unit(module)
        )
    state: dict[str, int] = {}

    def visit(node, stack):
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                raise AssertionError(f"package cycle: {' -> '.join([*stack, nxt])}")
            if state.get(nxt) is None:
                visit(nxt, [*stack, nxt])
        state[node] = 2

    for unit in sorted(graph):
        if state.get(unit) is None:
            visit(unit, [unit])
    assert "io" in graph["registry"] and "registry" not in graph["io"]


def test_package_docstrings_list_their_modules():
    import ast

    for init in sorted(PACKAGE.glob("*/__init__.py")):
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))) or ""
        modules = sorted(p.stem for p in init.parent.glob("*.py") if p.stem != "__init__")
        missing = [m for m in modules if f".{m}`" not in doc]
        assert not missing, f"{init.parent.name}/__init__.py does not name {missing}"


def test_at_most_14_top_level_modules():
    modules = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(modules) <= 14, modules


def _parameters(node) -> int:
    a = node.args
    count = len(a.posonlyargs) + len(a.args) + len(a.kwonlyargs)
    count += (a.vararg is not None) + (a.kwarg is not None)
    return count - (1 if a.args and a.args[0].arg in ("self", "cls") else 0)


def test_internal_functions_take_settings_whole_and_at_most_10_parameters():
    import ast

    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        allowed = PUBLIC_ENTRY_POINTS.get(rel, set())
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            is_function = isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            if is_function and node.name not in allowed and _parameters(node) > 10:
                found.append(f"{rel}:{node.name} ({_parameters(node)})")
    assert not found, found


def test_only_io_imports_the_format_libraries():
    import ast

    libraries = {"zarr", "tifffile", "ome_zarr", "SimpleITK", "nibabel", "pydicom", "highdicom"}
    found = []
    for package in ("inference", "training", "viewer", "engine", "cli", "_qt", "preprocess",
                    "evaluation", "postprocess"):  # fmt: skip
        for path in sorted((PACKAGE / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    names = [node.module]
                found += [f"{path.relative_to(PACKAGE)}: {n}" for n in names
                          if n.split(".")[0] in libraries]  # fmt: skip
    assert not found, found


def test_the_scattered_defaults_live_in_config_only():
    """The literals issue #22 found outside config/ (block, tile and batch defaults, the
    foreground share, the overlap, the decoder widths, refine's values) stay there."""
    import re

    patterns = [
        r"DEFAULT_BLOCK", r"DEFAULT_TILE", r"tile_size or 512", r"batch_size or 4",
        r"foreground_fraction=0\.5", r"overlap: float = 0\.25", r"256, 128, 64, 32, 16",
        r"learning_rate: float = 1e-4", r"margin: int = 32", r"timeout: float = 10\.0",
        r"default=10\.0", r"minutes: float \| None = 1\.0", r'CACHE_ENV, "512"',
        r'method: str = "watershed"', r"h: float = 2\.0", r"distance_h: float = 0\.1",
        r"distance_level: float = 0\.5", r'distance_seeds: str = "core"',
        r"fill_holes: bool = True", r"per_slice: bool = False", r"threshold: float = 0\.5",
    ]  # fmt: skip
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.parent.name == "config":
            continue
        text = path.read_text(encoding="utf-8")
        found += [f"{path.relative_to(PACKAGE)}: {p}" for p in patterns if re.search(p, text)]
    assert not found, found


def test_test_files_have_unique_names():
    """pytest's default import mode imports test modules by basename: two
    ``test_objects.py`` in different folders stop the whole suite at collection."""
    tests = Path(__file__).resolve().parent
    seen: dict[str, list[str]] = {}
    for path in tests.rglob("test_*.py"):
        if ".venv" not in path.parts:
            seen.setdefault(path.name, []).append(str(path.relative_to(tests)))
    assert not {name: where for name, where in seen.items() if len(where) > 1}
