"""What an image goes through before the network sees it, shared by training, inference,
evaluation and export (numpy and scikit-image only: no torch).

Modules: :mod:`.normalize` (axes and channels of any array as slices, and the input
normalisations), :mod:`.spacing` (in-plane resampling to the model's pixel size and back),
:mod:`.intensity` (the training inputs' intensity record and the linear percentile mapping
onto it), :mod:`.adapt` (spacing and intensity applied before normalising), :mod:`.pairs`
(the rules of labelled pairs: shapes, labels, sparse strokes, classes) and
:mod:`.pair_spacing` (training pairs resampled to one spacing).
"""
