"""Instance-aware training (``instances=True``): boundary targets from instance maps and
binary masks, the weighted loss, the checkpoint's instance head, bad combinations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import napari_res101unet as nr
from napari_res101unet.checkpoint import load_model, read_header
from napari_res101unet.config import INSTANCE_CLASS_NAMES, TrainSettings
from napari_res101unet.preprocess.pairs import IGNORE, check_pairs
from napari_res101unet.training.instance_pairs import class_weights, instance_pairs
from napari_res101unet.training.losses import dice_ce_loss, make_loss

TINY = {"patch_size": 64, "batch_size": 2, "steps_per_epoch": 2, "device": "cpu"}


def touching_discs(size: int = 96, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Rows of discs that touch their neighbours (an instance map 1..n) and an image of
    them: bright discs, dark background, no visible border between touching discs."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    labels = np.zeros((size, size), np.uint16)
    n = 0
    for cy in (24, 70):
        for cx in range(14, size - 10, 22):
            n += 1
            r = 12 + rng.integers(0, 2)
            labels[((yy - cy) ** 2 + (xx - cx) ** 2 < r**2) & (labels == 0)] = n
    image = rng.normal(40, 10, (size, size)) + 120 * (labels > 0)
    return image.clip(0, 255).astype(np.uint8), labels


def test_targets_are_made_on_the_whole_image_and_keep_unlabelled_pixels():
    image, labels = touching_discs()
    labels = labels.astype(np.int32)
    labels[:4, :4] = 255  # unlabelled
    (pair,) = instance_pairs(check_pairs([(image, labels)], ignore_index=255), 255, "boundary")
    targets = pair.labels[0]
    assert set(np.unique(targets)) == {0, 1, 2, 255}
    assert (targets[:4, :4] == 255).all()
    # the shared border of two touching discs is contour, never interior
    a, b = labels == 1, labels == 2
    border = a & np.roll(b, -1, axis=1)
    assert border.any() and (targets[border] == 2).all()
    assert list(pair.values) == [0, 1, 2] and pair.counts.sum() == (targets != 255).sum()


def test_class_weights_favour_the_thin_contour():
    image, labels = touching_discs()
    (pair,) = instance_pairs(check_pairs([(image, labels)]), None, "boundary")

    class Item:  # the fields class_weights reads of a Prepared
        def __init__(self, lab):
            self.labels, self.slices = lab, [0]

    lab = pair.labels.astype(np.int16)
    lab[0, :2] = IGNORE
    weights = class_weights([Item(lab)])
    assert len(weights) == 3 and weights[2] > weights[1] and weights[2] > 1
    assert class_weights([Item(np.zeros((1, 4, 4), np.int16))]) == [1.0, 1.0, 1.0]


def test_weighted_cross_entropy_matches_torch():
    torch.manual_seed(0)
    logits, target = torch.randn(2, 3, 8, 8), torch.randint(0, 3, (2, 8, 8))
    w = torch.tensor([0.5, 1.0, 4.0])
    ours = dice_ce_loss(logits, target, class_weights=w, dice_weight=0.0)
    assert torch.allclose(ours, torch.nn.functional.cross_entropy(logits, target, weight=w))
    with pytest.raises(ValueError, match="2 class_weights for a head of 3"):
        make_loss("dice_ce", 3, None, [1.0, 2.0])
    with pytest.raises(ValueError, match="positive"):
        make_loss("dice_ce", 3, None, [1.0, 0.0, 2.0])


def test_instance_training_records_the_boundary_head_and_reloads(tmp_path):
    pairs = [touching_discs(seed=i) for i in range(2)]
    assert TrainSettings().instance_head == "distance"  # the measured default (the guide)
    model = nr.train(pairs, **TINY, epochs=1, instances=True, instance_head="boundary",
                     output=tmp_path / "objects")  # fmt: skip
    assert model.spec.instance_head == "boundary" and model.spec.classes == 3
    assert model.spec.class_names == list(INSTANCE_CLASS_NAMES)
    settings = model.spec.training["settings"]
    assert settings["instances"] is True and settings["classes"] == 3
    assert len(settings["class_weights"]) == 3 and settings["class_weights"][2] > 1
    assert read_header(tmp_path / "objects.safetensors")["spec"]["instance_head"] == "boundary"
    again = load_model(tmp_path / "objects.safetensors")
    assert again.spec.instance_head == "boundary"
    assert again.spec.class_names == ["background", "interior", "contour"]
    # binary masks: objects are connected components; a fine-tune gets a 3-class head
    image, labels = touching_discs(seed=3)
    semantic = nr.train([(image, labels > 0)], **TINY, epochs=1)
    assert semantic.spec.instance_head is None and semantic.spec.classes == 2
    tuned = nr.train([(image, labels > 0)], **TINY, epochs=1, model=semantic, instances=True,
                     instance_head="boundary")  # fmt: skip
    assert tuned.spec.classes == 3 and tuned.spec.instance_head == "boundary"
    assert semantic.spec.classes == 2  # the given model is left as it was
    # trained on further without instances=True (as refine does), a model keeps its head
    kept = nr.train([(image, (labels > 0).astype(np.uint8))], **TINY, epochs=1, model=tuned)
    assert kept.spec.instance_head == "boundary" and kept.spec.classes == 3


def test_a_distance_head_learns_bins_of_the_distance_to_the_boundary():
    image, labels = touching_discs()
    (pair,) = instance_pairs(check_pairs([(image, labels)]), None, "distance")
    targets = pair.labels[0]
    assert list(np.unique(targets)) == [0, 1, 2, 3, 4, 5]
    assert targets[24, 14] == 5 and targets[labels == 0].max() == 0  # centre, background
    a, b = labels == 1, labels == 2
    assert (targets[a & np.roll(b, -1, axis=1)] == 1).all()  # the shared border: bin 1
    model = nr.train([(image, labels)], **TINY, epochs=1, instances=True, val_fraction=0.0)
    assert model.spec.instance_head == "distance" and model.spec.classes == 6
    assert model.spec.class_names[1] == "distance 1/5"
    assert model.spec.training["settings"]["instance_head"] == "distance"
    # the smallest plausible object is measured on the objects (discs of ~450 px), not on
    # the head's classes (rings of distance bins)
    assert model.spec.min_object_size is not None and model.spec.min_object_size > 100
    # segment(instances=True) reads the head: an id per object, by the distance method
    result = nr.run_segmentation(image, model, device="cpu", instances=True)
    assert result.labels.dtype in (np.uint16, np.uint32)
    assert any("distance" in note for note in result.notes)


def test_an_old_checkpoint_without_the_field_loads_as_semantic(tmp_path):
    from napari_res101unet.model import ModelSpec

    data = ModelSpec().to_dict()
    data.pop("instance_head")
    assert ModelSpec.from_dict(data).instance_head is None
    with pytest.raises(ValueError, match="instance_head must be one of"):
        ModelSpec(instance_head="stardist")


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"sparse": True}, "sparse labels"),
        ({"classes": 2, "instance_head": "boundary"}, "boundary head trains 3 classes"),
        ({"classes": 3}, "distance head trains 6 classes"),
        ({"instance_head": "stardist"}, "instance_head"),
        ({"instances": "yes"}, "instances"),
    ],
)
def test_bad_combinations_are_refused(fields, match):
    with pytest.raises((ValueError, TypeError), match=match):
        TrainSettings(**{"instances": True, **fields})


def test_a_pair_without_objects_is_refused_before_training():
    image, labels = touching_discs()
    empty = np.zeros_like(labels)
    empty[0, 0] = 255
    with pytest.raises(ValueError, match="holds no object"):
        nr.train([(image, labels), (image, empty)], **TINY, instances=True, ignore_index=255)
