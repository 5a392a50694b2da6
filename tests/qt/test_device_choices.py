"""The device picker offers "all GPUs" for training only where the engine found several."""

from __future__ import annotations

from napari_res101unet._qt.base import device_choices
from napari_res101unet.config import ALL_GPUS


def test_all_gpus_is_offered_for_training_only_with_two_or_more_cuda_devices():
    two = {"devices": {"cuda:0": "GPU 0", "cuda:1": "GPU 1", "cpu": "CPU"}}
    one = {"devices": {"cuda:0": "GPU 0", "cpu": "CPU"}}
    assert (("all GPUs (2, one process each)", ALL_GPUS)) in device_choices(two, True)
    assert ALL_GPUS not in [v for _, v in device_choices(two)]  # segmentation: never
    assert ALL_GPUS not in [v for _, v in device_choices(one, True)]
    assert ALL_GPUS not in [v for _, v in device_choices({"devices": {"cpu": "CPU"}}, True)]
