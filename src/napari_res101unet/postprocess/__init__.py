"""Post-processing of predictions into what users count and measure.

:mod:`.instances` (objects from a foreground, boundary classes or a distance map:
connected components, seeded watersheds, holes, small objects; ``instances_from``),
:mod:`.stitch` (ids unique over blocks, objects cut by block edges merged),
:mod:`.objects` (objects from a network's labels as the segment settings ask: the method
the model's instance head or the settings choose, the learned smallest size) and
:mod:`.from_model` (objects from a model's probabilities by its instance head:
``instances_for_head``). numpy, SciPy and scikit-image only: no torch, no Qt.
"""
