"""refine(): fine-tune the current model on corrections, keep every painted pixel."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import napari_res101unet as nr
from napari_res101unet.checkpoint import read_header
from napari_res101unet.registry import describe_model, list_models
from napari_res101unet.training.corrected import confirmed_area, edited_mask

QUICK = {
    "minutes": None,
    "epochs": 1,
    "steps_per_epoch": 1,
    "patch_size": 64,
    "batch_size": 1,
    "augment": False,
    "device": "cpu",
}


def _weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.mark.slow
def test_refine_a_stack_keeps_the_corrected_slice_and_resegments_the_others(small_model, tmp_path):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (3, 64, 64), dtype=np.uint8)
    before = _weights(small_model)
    labels = nr.segment(image, small_model, device="cpu")
    labels[1] = 0
    labels[1, 10:30, 10:30] = 1  # the user's correction on slice 1
    mask = np.zeros(labels.shape, bool)
    mask[1, 10:30, 10:30] = True
    out = nr.refine(small_model, image, labels, edited=mask, output=tmp_path / "r", **QUICK)

    assert out.path == tmp_path / "r.safetensors" and out.path.exists()
    assert np.array_equal(out.labels[1], labels[1])  # painted + confirmed: kept exactly
    assert np.array_equal(out.confirmed[1], np.ones((64, 64), bool)) and not out.confirmed[0].any()
    again = nr.segment(image[[0, 2]], out.model, device="cpu")
    assert np.array_equal(out.labels[[0, 2]], again)  # the others: the refined model's
    training = out.model.spec.training
    assert training["settings"]["train_slices"] == 1  # only the corrected slice trained
    assert training["step"] == 1
    assert all(torch.equal(before[k], v) for k, v in small_model.state_dict().items())

    saved = read_header(out.path)["spec"]["training"]["refinements"]
    assert saved == [out.record]
    assert out.record["corrected_pixels"] == 400 and out.record["slices"] == [1]
    assert out.record["confirmed_pixels"] == 64 * 64 and out.record["when"].endswith("+00:00")
    assert describe_model(out.path).summary.startswith("refined 1x")


@pytest.mark.slow
def test_refine_2d_keeps_painted_pixels_and_trains_near_them_only(small_model, tmp_path):
    rng = np.random.default_rng(1)
    image = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
    labels = np.zeros((64, 64), np.int32)  # napari's default labels dtype
    labels[5:9, 40:50] = 1
    mask = labels > 0
    first = nr.refine(
        small_model, image, labels, edited=mask, margin=4, output=tmp_path / "a", **QUICK
    )
    assert np.array_equal(first.labels[mask], labels[mask])
    assert first.confirmed.sum() == (4 + 8) * (10 + 8)  # the painted box grown by 4
    outside = ~first.confirmed
    again = nr.segment(image, first.model, device="cpu")
    assert np.array_equal(first.labels[outside], again[outside])

    # a second turn from the refined model: the history grows, a new file is written
    second = nr.refine(
        first.path, image, first.labels, edited=mask, pairs=[(image, first.labels)],
        output=tmp_path / "b", **QUICK,
    )  # fmt: skip
    history = read_header(second.path)["spec"]["training"]["refinements"]
    assert len(history) == 2 and history[1]["earlier_pairs"] == 1
    assert history[1]["from"] == first.model.spec.name


def test_refine_saves_under_a_new_name_in_the_model_folder(small_model, tmp_path):
    image = np.zeros((64, 64), np.uint8)
    labels = np.zeros((64, 64), np.uint8)
    labels[:8, :8] = 1
    out = nr.refine(small_model, image, labels, edited=labels > 0, **QUICK)
    assert out.path.parent == nr.models_dir() and "-refined-" in out.path.name
    listed = {e.path: e.summary for e in list_models()}  # the Segment widget's list
    assert listed[out.path] == "refined 1x on corrections"
    with pytest.raises(ValueError, match="never replaces"):
        nr.refine(small_model, image, labels, edited=labels > 0, output=out.path, **QUICK)


@pytest.mark.parametrize("edited", [None, [], np.zeros((64, 64), bool)])
def test_refine_with_no_edits_says_so(small_model, edited):
    image = np.zeros((64, 64), np.uint8)
    with pytest.raises(ValueError, match="no corrections to learn from: paint"):
        nr.refine(small_model, image, np.zeros((64, 64), np.uint8), edited=edited, **QUICK)


def test_refine_refuses_labels_or_edits_of_another_shape(small_model):
    image = np.zeros((64, 64), np.uint8)
    with pytest.raises(ValueError, match=r"labels \(shape \(48, 64\)\) are not of the image"):
        nr.refine(small_model, image, np.zeros((48, 64), np.uint8), edited=[0], **QUICK)
    mask = np.ones((32, 32), bool)
    with pytest.raises(ValueError, match="edits .* made on a layer of another shape"):
        nr.refine(small_model, image, np.zeros((64, 64), np.uint8), edited=mask, **QUICK)


def test_edited_forms_and_confirmed_areas():
    mask, edits = edited_mask([2], (4, 8, 8))
    assert mask[2].all() and not mask[[0, 1, 3]].any() and edits == 1
    with pytest.raises(ValueError, match="outside the stack"):
        edited_mask([4], (4, 8, 8))
    with pytest.raises(ValueError, match="list of slice indices"):
        edited_mask([1], (8, 8))
    painted = np.zeros((16, 16), bool)
    painted[8, 8] = True
    assert confirmed_area(painted, "region", 2).sum() == 25
    assert confirmed_area(painted, "slice").all()
    with pytest.raises(ValueError, match="confirm must be one of"):
        confirmed_area(painted, "image")
