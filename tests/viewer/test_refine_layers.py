"""The loop from layers without Qt: segment with uncertainty, paint, refine (ViewerModel)."""

from __future__ import annotations

import numpy as np
import pytest

napari = pytest.importorskip("napari")
from napari.components import ViewerModel  # noqa: E402

from napari_res101unet import viewer as api  # noqa: E402
from napari_res101unet.registry import list_models  # noqa: E402
from napari_res101unet.viewer.session import SESSION_MODELS  # noqa: E402

QUICK = {"epochs": 1, "steps_per_epoch": 1, "patch_size": 64, "batch_size": 1}


@pytest.fixture
def viewer():
    SESSION_MODELS.clear()
    yield ViewerModel()
    SESSION_MODELS.clear()


def _stack(viewer):
    data = np.random.default_rng(0).integers(0, 255, (3, 64, 64), dtype=np.uint8)
    return viewer.add_image(data, name="scan", scale=(2.0, 0.5, 0.5))


@pytest.mark.slow
def test_segment_uncertainty_paint_refine(viewer):
    image = _stack(viewer)
    labels = api.segment_layer(
        viewer, image, "untrained", show_uncertainty=True, in_process=True, device="cpu"
    )
    unc = viewer.layers["scan uncertainty"]
    assert unc.data.shape == (3, 64, 64) and 0 <= unc.data.min() <= unc.data.max() <= 1
    assert np.allclose(unc.scale, image.scale) and unc.colormap.name == "magma"
    review = labels.metadata[api.TAG]["review"]
    assert sorted(r["index"] for r in review) == [0, 1, 2]
    assert review[0]["score"] >= review[-1]["score"]

    labels.brush_size = 6
    labels.paint((1, 30, 30), 1)  # a correction on slice 1 (a real paint event)
    painted = labels.data.copy()
    refined = api.refine_layer(
        viewer, labels, in_process=True, minutes=None, device="cpu", **QUICK
    )
    assert refined.name == "scan refined" and refined is not labels
    assert np.array_equal(refined.data[1], painted[1])  # the corrected slice, kept
    assert np.array_equal(labels.data, painted)  # the painted layer is not touched
    assert np.allclose(refined.scale, labels.scale)
    path = refined.metadata[api.TAG]["model"]
    assert any(str(m.path) == path for m in SESSION_MODELS)
    assert any(str(e.path) == path for e in list_models())  # a new file in the model folder

    with pytest.raises(ValueError, match="no corrections to learn from"):
        api.refine_request(viewer, refined)  # nothing painted on the new layer yet


def test_refine_request_rejects_bad_input_before_anything_runs(viewer):
    image = _stack(viewer)
    labels = api.put_labels(viewer, image, np.zeros((3, 64, 64), np.uint8), None)
    with pytest.raises(ValueError, match="no corrections to learn from"):
        api.refine_request(viewer, labels, "untrained")
    drawn = viewer.add_labels(np.zeros((3, 32, 32), np.uint8), name="drawn")
    with pytest.raises(ValueError, match="not segmented here: pass the image"):
        api.refine_request(viewer, drawn, "untrained")
    drawn.paint((0, 5, 5), 1)
    with pytest.raises(ValueError, match=r"not of the image's shape \(3, 64, 64\)"):
        api.refine_request(viewer, drawn, "untrained", image="scan", edited=[0])
    labels.paint((0, 5, 5), 1)
    request = api.refine_request(viewer, labels, "untrained", minutes=0.5)
    assert request.edited[0].any() and not request.edited[1:].any()
    assert request.settings.minutes == 0.5 and "-refined-" in request.output
    _img, target = request.correction_pair()
    assert target.shape == (3, 64, 64) and (target[1:] == 255).all() and (target[0] < 255).all()
