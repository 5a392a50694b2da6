"""The napari API without Qt: segment and train from layers, as the widgets do.

Works on ``napari.components.ViewerModel`` and ``napari.Viewer(show=False)`` alike and
imports neither Qt nor torch: the network runs in the engine process
(:mod:`napari_res101unet.engine`), exactly as from the widgets, or in this process when
the caller passes ``in_process=True`` (torch is then imported here)::

    import napari, napari_res101unet as nr
    viewer = napari.Viewer(show=False)
    image = viewer.add_image(data, name="scan", scale=(0.8, 0.8))
    labels = nr.segment_layer(viewer, "scan", "liver")          # a Labels layer
    model = nr.train_from_layers(viewer, [("scan", "scan labels")], epochs=5)

The promises the widgets keep live here: a result layer is named after its image and
carries its scale, translate and orientation metadata; a layer the user painted on is
never overwritten (a new one is made); re-thresholding reuses kept probabilities.
Preparing a job (``*_request``) and applying its result (``apply_*``) are separate
functions so the widgets can run the job in a worker thread between the two.

Modules: :mod:`.segment` (segment_layer, re-threshold), :mod:`.segment_lazy` (dask, zarr
and multiscale layers, block by block from their store), :mod:`.train`
(train_from_layers), :mod:`.refine_layers` (fine-tune on painted corrections),
:mod:`.corrections` (edits tracked from a Labels layer's paint events), :mod:`.review`
(uncertainty layer, review list), :mod:`.layers` (names, geometry, painted layers kept,
spacing), :mod:`.jobs` (an engine operation run in the engine process or here; a cohort
of files: ``segment_files``) and
:mod:`.session` (the models this napari session knows).
"""

from __future__ import annotations

from .corrections import Corrections, corrections, reset_corrections, track_corrections
from .jobs import Progress, run_job, segment_files
from .layers import (
    GEOMETRY_KEYS,
    SOURCE_KEYS,
    TAG,
    derived_metadata,
    free_name,
    get_layer,
    is_edited,
    layer_array,
    layer_kind,
    mark_edited,
    own_layer,
    spatial_geometry,
    spatial_shape,
)
from .refine_layers import (
    RefineOutcome,
    RefineRequest,
    apply_refine_result,
    refine_layer,
    refine_request,
)
from .review import jump_to, put_uncertainty, review_items, show_uncertainty
from .segment import (
    SegmentOutcome,
    SegmentRequest,
    apply_segment_result,
    current_index,
    model_reference,
    put_labels,
    put_probabilities,
    record_model,
    rethreshold,
    segment_layer,
    segment_request,
)
from .train import (
    TrainRequest,
    apply_train_result,
    resolve_pairs,
    train_from_layers,
    train_request,
    unique_model_path,
)

__all__ = [
    "GEOMETRY_KEYS",
    "SOURCE_KEYS",
    "TAG",
    "Corrections",
    "Progress",
    "RefineOutcome",
    "RefineRequest",
    "SegmentOutcome",
    "SegmentRequest",
    "TrainRequest",
    "apply_refine_result",
    "apply_segment_result",
    "apply_train_result",
    "corrections",
    "current_index",
    "derived_metadata",
    "free_name",
    "get_layer",
    "is_edited",
    "jump_to",
    "layer_array",
    "layer_kind",
    "mark_edited",
    "model_reference",
    "own_layer",
    "put_labels",
    "put_probabilities",
    "put_uncertainty",
    "record_model",
    "refine_layer",
    "refine_request",
    "reset_corrections",
    "resolve_pairs",
    "rethreshold",
    "review_items",
    "run_job",
    "segment_files",
    "segment_layer",
    "segment_request",
    "show_uncertainty",
    "spatial_geometry",
    "spatial_shape",
    "track_corrections",
    "train_from_layers",
    "train_request",
    "unique_model_path",
]
