"""Constants of the architecture, the formats and the automatic choices (no settings)."""

from __future__ import annotations

from types import MappingProxyType

__all__ = [
    "ALL_GPUS",
    "ARCHITECTURE",
    "BLENDINGS",
    "CHECKPOINT_FORMAT",
    "CONFIRM_MODES",
    "CT_WINDOW",
    "DECODER_CHANNELS",
    "DEVICES",
    "DICOM_SEG",
    "ENCODER_NAME",
    "FEW_PASSES",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "INSTANCE_CLASS_NAMES",
    "INSTANCE_FALLBACK",
    "INSTANCE_HEADS",
    "INSTANCE_METHODS",
    "INSTANCE_TRAINING",
    "INSTANCE_TUNING",
    "LEARNING_RATES",
    "LOSSES",
    "MANY_PASSES",
    "MIN_OBJECT_PERCENTILE",
    "NETWORK_MULTIPLE",
    "NORMALIZATIONS",
    "PERCENTILES",
    "REFINE_EPOCHS_WITH_BUDGET",
    "SLICE_CACHE_MB",
    "SPARSE_IGNORE",
    "TRAIN_LIMITS",
]

ARCHITECTURE = "Res101_UNet"
"""Name written into every checkpoint; a file naming another architecture is refused."""

ENCODER_NAME = "resnet101"
"""The segmentation-models-pytorch encoder behind Res101_UNet."""

NETWORK_MULTIPLE = 32
"""Spatial sizes fed to the network are padded to a multiple of this (5 down-samplings)."""

CHECKPOINT_FORMAT = 1
"""Version of the checkpoint JSON; bumped when its meaning changes."""

DEVICES = ("auto", "cpu", "cuda", "mps")
"""Device names accepted everywhere (``cuda:N`` too)."""

ALL_GPUS = "cuda:all"
"""Training on every local GPU (one DDP rank each; the Train widget offers it when the
engine reports two or more CUDA devices)."""

NORMALIZATIONS = ("auto", "imagenet", "percentile", "window", "minmax", "none")
"""Input normalisations a model spec may name (see
:mod:`napari_res101unet.preprocess.normalize`)."""

BLENDINGS = ("gaussian", "constant")
"""How overlapping tiles are blended."""

DICOM_SEG = "dicom-seg"
"""The ``CohortSettings.format`` that writes a DICOM Segmentation of a DICOM input."""

SPARSE_IGNORE = 255
"""Label value that sparse labels' 0 ("not annotated") becomes (see ``TrainSettings.sparse``)."""

LOSSES = MappingProxyType(
    {
        "dice_ce": "cross-entropy + soft Dice of the foreground classes, ignore-aware",
        "dice": "soft Dice of the foreground classes (smp DiceLoss)",
        "focal": "focal loss, gamma 2 (smp FocalLoss)",
        "tversky": "Tversky index, alpha 0.3 / beta 0.7: a missed pixel costs more than a "
        "false one (smp TverskyLoss)",
    }
)
"""Training losses by name (``TrainSettings.loss``), with what each computes (see
:mod:`napari_res101unet.training.losses`)."""

CONFIRM_MODES = ("auto", "slice", "region")
"""What counts as checked by the user when refining (``RefineSettings.confirm``)."""

DECODER_CHANNELS = (256, 128, 64, 32, 16)
"""Decoder widths of smp's Unet, which a Res101_UNet keeps unless its checkpoint says."""

LEARNING_RATES = MappingProxyType({"pretrained": 3e-4, "random": 1e-3})
"""Automatic learning rate: fine-tuning trained weights takes smaller steps than training a
randomly initialised network (on the bundled liver sample, 80 steps from random weights
reached held-out IoU 0.79 at 1e-3 against 0.59 at 3e-4)."""


TRAIN_LIMITS: dict = {
    "min_steps_per_epoch": 16,
    "max_warmup_steps": 50,  # warmup: 5 % of the planned steps, at most this
    "max_steps_per_epoch": 1000,
    "max_auto_classes": 16,  # more label values than this needs classes= given explicitly
    "max_val_slices": 64,  # validation scores at most this many slices (evenly spread)
    "val_tile": 1024,  # validation slices larger than this are tiled
}
"""Bounds the training engine applies to its automatic choices (not user settings)."""

CT_WINDOW = (-160.0, 240.0)
"""Hounsfield window (soft tissue, abdomen) used for int16 CT under ``auto`` normalisation."""

PERCENTILES = (1.0, 99.8)
"""Lower/upper percentiles used for microscopy-style normalisation."""

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

FEW_PASSES = 4.0
"""Planned passes over the training pixels below which a run is not augmented (the
training recipe's dosing; here so that help texts name it without importing torch)."""

MANY_PASSES = 8.0
"""Planned passes from which the augmentation cap is the one of the planned steps."""

REFINE_EPOCHS_WITH_BUDGET = 10_000
"""Epochs of a refinement with a time budget: the budget, not the epochs, ends it."""

SLICE_CACHE_MB = 512
"""Megabytes of decoded slices a process keeps of training data read from disk (unless
``$NAPARI_RES101UNET_CACHE_MB`` says otherwise)."""

INSTANCE_METHODS = ("auto", "components", "watershed", "boundary", "distance")
"""How ``segment(..., instances=True)`` separates objects: ``auto`` is the model's instance
head (``boundary`` or ``distance``, see :data:`INSTANCE_HEADS`), else the
distance-transform ``watershed``; ``components`` keeps touching objects together;
``boundary`` and ``distance`` need a model with that head."""

INSTANCE_FALLBACK = "watershed"
"""The method ``auto`` means for a model without an instance head."""

INSTANCE_TUNING = MappingProxyType(
    {"h": 2.0, "distance_seeds": "core", "distance_level": 0.5, "distance_h": 0.1}
)
"""Seeds of the watersheds: ``h`` pixels deep maxima of the distance transform (a neck
narrower than the objects by this much splits them); for a predicted (per-object
normalised) distance map, ``distance_seeds`` ``"core"``: the connected regions where it
is at least ``distance_level`` (the inner half of each object; micro-sam's automatic mode
seeds its watershed at the same level of its normalised boundary distance), or
``"maxima"``: its ``distance_h`` deep maxima (splits more, over-split at 10 CPU minutes)."""

MIN_OBJECT_PERCENTILE = 5.0
"""The smallest plausible object a training run records is half this percentile of its
training objects' areas (pixels at the model's spacing)."""

INSTANCE_HEADS = ("boundary", "distance")
"""Instance heads a checkpoint may record (``ModelSpec.instance_head``), learned by
``train(..., instances=True)``: ``boundary``, 3 classes background / interior / contour
(DCAN); ``distance``, background and ``distance_bins`` classes of the distance to the
object's boundary normalised per object (the deep watershed transform's energy levels;
foreground + distance as micro-sam's automatic mode)."""

INSTANCE_CLASS_NAMES = ("background", "interior", "contour")
"""The classes of a boundary head, in output order."""

INSTANCE_TRAINING = MappingProxyType(
    {"contour_width": 2, "max_class_weight": 10.0, "distance_bins": 5}
)
"""How ``train(..., instances=True)`` makes and weighs its targets: ``contour_width``
pixels of each object's rim (at the training pixel size) become the contour class, so two
touching objects are parted by a band of twice that width (2: 4 px between two GlaS glands
at 20x, thin beside glands ~100 px across, wide enough to survive the network's 2x
up-sampling); a distance head has ``distance_bins`` classes of the normalised distance
(bin k holds (k-1)/n < d <= k/n); the cross-entropy weighs each class by median-frequency
balancing over the training targets (Eigen & Fergus 2015), at most ``max_class_weight``,
so thin classes (the contour, the outer distance bin) are learned."""
