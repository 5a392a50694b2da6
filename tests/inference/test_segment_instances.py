"""``segment(..., instances=True)``: one id per object, the method a model's instance head
or the settings choose, the smallest object learned in training, 3D in 3D or per slice."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from predictors import per_pixel

from napari_res101unet import run_segmentation, segment
from napari_res101unet.model import ModelSpec


def discs(shape=(128, 128), centres=((40, 40), (40, 62), (96, 90)), radius=12) -> np.ndarray:
    """Bright discs (200) on black; the first two touch (centres 22 px apart)."""
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    image = np.zeros(shape, np.uint8)
    for cy, cx in centres:
        image[(yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2] = 200
    return image


class Spec(torch.nn.Module):
    """A predictor carrying a ModelSpec, as a trained model does."""

    def __init__(self, predict, **spec) -> None:
        super().__init__()
        self.predict, self.spec = predict, ModelSpec(in_channels=1, **spec)

    def forward(self, x):
        return self.predict(x)


def _run(image, model=per_pixel, **fields):
    opts = {"device": "cpu", "normalization": "none", "channel_axis": None}
    if isinstance(model, Spec):
        opts.pop("normalization")
    return run_segmentation(image, model, instances=True, **{**opts, **fields})


def test_touching_discs_become_two_objects_and_components_keep_them_one():
    result = _run(discs())
    assert result.labels.dtype == np.uint16 and result.labels.max() == 3
    assert any("3 objects (watershed" in n for n in result.notes)
    ids = {int(result.labels[40, 40]), int(result.labels[40, 62])}
    assert len(ids) == 2 and 0 not in ids
    together = _run(discs(), instance_method="components")
    assert together.labels.max() == 2
    assert together.labels[40, 40] == together.labels[40, 62]
    plain = segment(discs(), per_pixel, device="cpu", normalization="minmax")
    assert plain.dtype == np.uint8 and plain.max() == 1  # without instances: classes


def test_a_stack_gives_objects_in_3d_or_per_slice():
    stack = np.stack([discs()] * 3)
    in_3d = _run(stack).labels
    per_slice = _run(stack, per_slice=True).labels
    assert in_3d.shape == per_slice.shape == stack.shape
    assert in_3d.max() == 3 and per_slice.max() == 9
    assert len(np.unique(per_slice[:, 96, 90])) == 3  # one object per slice
    assert len(np.unique(in_3d[:, 96, 90])) == 1  # one object through the stack


def test_multi_class_models_give_objects_per_class():
    image = discs()
    image[discs(centres=((96, 90),)) > 0] = 100  # the third disc: the other class

    def two_classes(x):
        v = x[:, :1] / 200
        return torch.cat([(0.2 - v) * 20, 20 - (v - 0.5).abs() * 80, (v - 0.7) * 40], dim=1)

    result = _run(image, two_classes)
    classes = segment(image, two_classes, device="cpu", normalization="none")
    assert set(np.unique(classes)) == {0, 1, 2}
    labels = result.labels
    assert labels.max() == 3 and any("per class" in n for n in result.notes)
    for obj in range(1, 4):  # each object lies in one class
        assert len(np.unique(classes[labels == obj])) == 1


def test_objects_below_the_learned_size_are_dropped_unless_told_otherwise():
    image = discs(centres=((40, 40), (96, 90)))
    image[10:13, 100:103] = 200  # a 9-pixel speck
    learned = Spec(per_pixel, min_object_size=30, normalization={"mode": "none"})
    assert _run(image, learned).labels.max() == 2
    assert _run(image, learned, min_object_size=0).labels.max() == 3
    none = Spec(per_pixel, normalization={"mode": "none"})  # records no size: keeps all
    assert _run(image, none).labels.max() == 3


def test_holes_are_filled_unless_asked_not_to():
    image = discs(centres=((64, 64),), radius=20)
    image[60:68, 60:68] = 0
    assert _run(image).labels[64, 64] > 0
    assert _run(image, fill_holes=False).labels[64, 64] == 0


def test_a_boundary_head_splits_touching_objects_along_its_contour():
    """A model recording ``instance_head="boundary"`` (background / interior / contour)
    gives objects seeded by the interior, contour pixels joined to them."""
    image = discs(centres=((64, 40), (64, 64)), radius=12)
    image[image > 0] = 200
    image[:, 52] = np.where(image[:, 52] > 0, 100, 0)  # where they touch: contour

    def boundary(x):
        v = x[:, :1] / 200
        bg, interior, contour = (0.2 - v) * 20, (v - 0.7) * 40, 20 - (v - 0.5).abs() * 80
        return torch.cat([bg, interior, contour], dim=1)

    head = Spec(boundary, classes=3, instance_head="boundary", normalization={"mode": "none"})
    result = _run(image, head)
    assert any("(boundary" in n for n in result.notes)
    assert result.labels.max() == 2
    assert result.labels[64, 40] != result.labels[64, 64]
    assert (result.labels[:, 52] > 0).sum() == (image[:, 52] > 0).sum()  # contour kept


def test_boundary_is_refused_for_a_model_without_that_head():
    with pytest.raises(ValueError, match="needs a model trained with a boundary head"):
        _run(discs(), instance_method="boundary")


def test_the_checkpoint_records_the_instance_fields_and_old_ones_still_load(small_model, tmp_path):
    from napari_res101unet import load_model, save_model
    from napari_res101unet.checkpoint import read_header

    small_model.spec.instance_head, small_model.spec.min_object_size = "boundary", 17
    try:
        path = save_model(small_model, tmp_path / "head")
    finally:
        small_model.spec.instance_head = small_model.spec.min_object_size = None
    assert read_header(path)["spec"]["instance_head"] == "boundary"
    loaded = load_model(path)
    assert (loaded.spec.instance_head, loaded.spec.min_object_size) == ("boundary", 17)
    old = {k: v for k, v in loaded.spec.to_dict().items()
           if k not in ("instance_head", "min_object_size")}  # fmt: skip
    spec = ModelSpec.from_dict(old)
    assert spec.instance_head is None and spec.min_object_size is None
    with pytest.raises(ValueError, match="instance_head must be one of"):
        ModelSpec.from_dict({**old, "instance_head": "stardist"})
