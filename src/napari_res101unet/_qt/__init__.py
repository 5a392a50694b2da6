"""The only Qt code of the plugin: dock widgets for napari, thin over :mod:`..viewer`.

Modules: :mod:`.base` (the engine-job skeleton every widget shares: engine process,
runner, Run/Cancel, progress, status, device and model pickers), :mod:`.segment_widget`
(Segment), :mod:`.review_panel` (the Segment widget's review list and "Fine-tune on
corrections"), :mod:`.train_widget` (Train), :mod:`.plot` (the Train widget's loss and IoU
curves) and :mod:`.activity` (a run's bar in napari's activity dock).
"""
