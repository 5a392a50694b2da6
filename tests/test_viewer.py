"""The Qt-free napari API (napari_res101unet.viewer) on a ViewerModel: no display, no Qt."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO

napari = pytest.importorskip("napari")
from napari.components import ViewerModel  # noqa: E402

from napari_res101unet import viewer as api  # noqa: E402
from napari_res101unet.config import SPARSE_IGNORE, SegmentSettings, TrainSettings  # noqa: E402
from napari_res101unet.viewer.session import SESSION_MODELS  # noqa: E402

DIRECTION = (1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0)


@pytest.fixture
def viewer():
    return ViewerModel()


@pytest.fixture(autouse=True)
def _fresh_session_models():
    SESSION_MODELS.clear()
    yield
    SESSION_MODELS.clear()


def _stack(viewer, name="ct"):
    data = np.random.default_rng(0).integers(0, 4000, (3, 40, 48), dtype=np.uint16)
    meta = {"direction": DIRECTION, "unit": "mm", "spacing": (2.0, 0.5, 0.5)}
    return viewer.add_image(
        data, name=name, scale=(2.0, 0.5, 0.5), translate=(5, 1, 2), metadata=meta
    )


def test_labels_keep_the_image_geometry_and_are_reused(viewer):
    image = _stack(viewer)
    first = api.put_labels(viewer, image, np.ones((3, 40, 48), np.uint8), None)
    assert first.name == "ct labels"
    assert np.allclose(first.scale, (2.0, 0.5, 0.5)) and np.allclose(first.translate, (5, 1, 2))
    assert first.metadata["direction"] == DIRECTION and first.metadata["unit"] == "mm"
    assert first.metadata[api.TAG] == {"source": "ct"}
    again = api.put_labels(viewer, image, np.zeros((40, 48), np.uint8), 1)
    assert again is first
    assert first.data[0].all() and not first.data[1].any() and first.data[2].all()


def test_a_painted_layer_is_never_overwritten(viewer):
    image = _stack(viewer)
    labels = api.put_labels(viewer, image, np.zeros((3, 40, 48), np.uint8), None)
    labels.paint((1, 5, 5), 7)  # what a brush stroke does: emits the paint event
    assert api.is_edited(labels)
    painted = labels.data.copy()
    other = api.put_labels(viewer, image, np.ones((3, 40, 48), np.uint8), None)
    assert other is not labels and other.name == "ct labels [2]"
    assert np.array_equal(labels.data, painted)
    outcome = api.SegmentOutcome(labels, np.full((3, 40, 48), 0.7, np.float32), "")
    assert not api.rethreshold(viewer, outcome, 0.5)
    assert np.array_equal(labels.data, painted)


def test_rethreshold_uses_kept_probabilities(viewer):
    image = _stack(viewer)
    probs = np.linspace(0, 1, 3 * 40 * 48, dtype=np.float32).reshape(3, 40, 48)
    labels = api.put_labels(viewer, image, (probs > 0.5).astype(np.uint8), None)
    outcome = api.SegmentOutcome(labels, probs, "")
    assert api.rethreshold(viewer, outcome, 0.2)
    assert np.array_equal(labels.data, (probs > 0.2).astype(np.uint8))


def test_segment_request_checks_the_layer(viewer):
    with pytest.raises(ValueError, match="no image layer"):
        api.segment_request(viewer, None, "untrained")
    viewer.add_image(np.zeros((2, 3, 8, 8)), name="4d")
    with pytest.raises(ValueError, match="'4d' has 4 spatial dimensions"):
        api.segment_request(viewer, "4d", "untrained")
    with pytest.raises(ValueError, match="no layer named 'nope'"):
        api.segment_request(viewer, "nope", "untrained")
    with pytest.raises(FileNotFoundError, match="no model 'absent'"):
        api.segment_request(viewer, "4d", "absent")


def test_current_slice_follows_the_viewer(viewer):
    image = _stack(viewer)
    viewer.dims.set_point(0, 9.0)  # world z 9 = translate 5 + 2 * slice 2
    request = api.segment_request(viewer, image, "untrained", current_slice=True)
    assert request.slice_index == 2 and request.data.shape == (40, 48)
    assert request.payload()["settings"].threshold == SegmentSettings().threshold


def test_segment_layer_in_process_gives_labels_with_geometry(viewer):
    image = viewer.add_image(
        np.random.default_rng(1).integers(0, 255, (40, 56, 3), dtype=np.uint8),
        name="rgb",
        scale=(0.5, 0.25),
    )
    seen = []
    labels = api.segment_layer(
        viewer, image, "untrained", in_process=True, progress=seen.append, tile_size=32
    )
    assert labels.name == "rgb labels" and labels.data.shape == (40, 56)
    assert np.allclose(labels.scale, (0.5, 0.25))
    assert seen and seen[-1]["kind"] == "progress"


def test_train_request_names_pairs_by_layer(viewer):
    viewer.add_image(np.zeros((32, 32), np.uint8), name="img")
    viewer.add_labels(np.zeros((16, 16), np.uint8), name="lab")
    with pytest.raises(ValueError, match=r"'img \+ lab': image shape \(32, 32\)"):
        api.train_request(viewer, [("img", "lab")])
    viewer.add_labels(np.zeros((32, 32), np.uint8), name="empty")
    with pytest.raises(ValueError, match="'img \\+ empty' hold no foreground: they are empty"):
        api.train_request(viewer, [("img", "empty")])
    viewer.add_labels(np.full((32, 32), 3, np.uint8), name="three")
    with pytest.raises(ValueError, match=r"'img \+ three' has label 3, beyond classes=2"):
        api.train_request(viewer, [("img", "three")], TrainSettings(classes=2))
    with pytest.raises(ValueError, match="is a image layer, not labels"):
        api.train_request(viewer, [("img", "img")])
    with pytest.raises(ValueError, match="no training data"):
        api.train_request(viewer, [])


def test_sparse_strokes_are_checked_like_everywhere_else(viewer):
    viewer.add_image(np.zeros((32, 32), np.uint8), name="img", scale=(0.3, 0.3))
    strokes = np.zeros((32, 32), np.uint8)
    strokes[:4] = 1
    strokes[10:14, 10:14] = 2
    viewer.add_labels(strokes, name="strokes")
    request = api.train_request(viewer, [("img", "strokes")], TrainSettings(sparse=True))
    assert request.payload()["settings"].sparse is True
    assert request.options["spacing"] == [0.3, 0.3]
    assert request.pairs[0][1] is not None  # the raw strokes travel; the engine converts
    viewer.add_labels(np.zeros((32, 32), np.uint8), name="nothing")
    with pytest.raises(ValueError, match="'img \\+ nothing' holds no sparse annotation"):
        api.train_request(viewer, [("img", "nothing")], TrainSettings(sparse=True))
    assert SPARSE_IGNORE == 255


def test_train_from_layers_in_process_saves_and_lists_the_model(viewer, tmp_path):
    rng = np.random.default_rng(0)
    labels = np.zeros((64, 64), np.uint8)
    labels[20:40, 20:40] = 1
    image = (rng.normal(60, 10, (64, 64)) + 100 * labels).clip(0, 255).astype(np.uint8)
    viewer.add_image(image, name="cells")
    viewer.add_labels(labels, name="cells mask")
    events = []
    path = api.train_from_layers(
        viewer,
        [("cells", "cells mask")],
        output=tmp_path / "m.safetensors",
        in_process=True,
        progress=events.append,
        epochs=1,
        steps_per_epoch=2,
        patch_size=64,
        batch_size=2,
        val_fraction=0,
    )
    assert path == tmp_path / "m.safetensors" and path.is_file()
    assert [m.path for m in SESSION_MODELS] == [path]
    assert any(e["event"]["kind"] == "epoch" for e in events)


def test_unique_model_paths_do_not_collide(tmp_path):
    first = api.unique_model_path("a b", tmp_path)
    first.write_bytes(b"x")
    second = api.unique_model_path("a b", tmp_path)
    assert first.name.startswith("res101unet-a_b-") and second != first


@pytest.mark.slow
def test_the_docs_example_runs_through_the_engine(tmp_path):
    """The site's "headless via the napari API" block (docs/guides/python.md), as a user
    would run it."""
    text = (REPO / "docs" / "guides" / "python.md").read_text(encoding="utf-8")
    section = text.split("## Headless via the napari API", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    code += "\nassert 'qtpy' not in __import__('sys').modules\n"
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        encoding="utf-8",
        errors="replace",
        timeout=600,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == "held out labels (2, 256, 256) [1.  0.8 0.8]"
