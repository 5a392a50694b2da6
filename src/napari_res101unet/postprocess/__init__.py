"""Post-processing of predictions into what users count and measure.

The room for instances (connected components, seeded watershed, stitching objects across
blocks), small components and hole filling. numpy, SciPy and scikit-image only: no torch,
no Qt.
"""
