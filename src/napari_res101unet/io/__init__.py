"""Every file format of the plugin (engine side: no napari, Qt or torch).

``read_image(path) -> ImageData`` and ``write_image(path, data, ...)`` /
``write_labels(path, labels, ...)`` are the contract that the CLI, the Python API and the
napari reader/writer share. No other package imports a format library.

Modules
-------
Images: :mod:`._read` and :mod:`._write` (the entry points), :mod:`._formats` (suffixes),
:mod:`._image` (:class:`ImageData`), :mod:`._content` (label maps, windows),
:mod:`._units`, :mod:`._limits` (sizes checked before reading), :mod:`._nifti`,
:mod:`._itk` (NRRD, MHA, PNG/JPEG/BMP), :mod:`._tiff`; DICOM: :mod:`._dicom`,
:mod:`._dicom_file`, :mod:`._dicom_header`, :mod:`._dicom_series`,
:mod:`._dicom_geometry`, :mod:`._dicom_frames` (multi-frame positions and scaling),
:mod:`._dicom_mosaic` (Siemens mosaics), :mod:`._dicom_seg` (writing SEG) and
:mod:`._dicom_segread`; :mod:`._tiff_extent` (a TIFF's pixels really in the file).
Larger than memory: :mod:`.large` (zarr / OME-Zarr / big TIFF / dask sources),
:mod:`._large_layers` (them as napari layers), :mod:`.label_store` (OME-Zarr labels
written atomically) and :mod:`.volumes` (stacks read slice by slice through a bounded
cache). Many files: :mod:`.inputs` (files, folders, globs, lists, parts),
:mod:`.outputs` (where outputs go; refused collisions), :mod:`.folders` (image and mask
folders paired by name) and :mod:`.provenance` (the sidecar of every output). Models:
:mod:`.bioimageio` (reading a bioimage.io package). :mod:`.files`: atomic durable writes
and SHA-256 digests.

Libraries
---------
nibabel reads and writes NIfTI-1/2 (its sform/qform rule, see :mod:`._nifti`); pydicom
reads DICOM headers (what an object is, where each slice lies, see :mod:`._dicom`) and
GDCM through SimpleITK decodes DICOM pixels (pydicom for 16-bit colour, and when GDCM
fails); highdicom reads DICOM SEG (:mod:`._dicom_segread`); SimpleITK reads and writes
NRRD, MetaImage and PNG/JPEG/BMP; tifffile reads and writes TIFF, OME-TIFF and ImageJ
hyperstacks. Integrity checks the libraries lack: a truncated NIfTI and a truncated
JPEG/BMP are errors here. docs/reader.md states what is guaranteed and what is refused.

Axes and orientation
--------------------
Arrays are in numpy order ``(Z, Y, X)``: ITK's index order ``(x, y, z)`` reversed, as
``SimpleITK.GetArrayFromImage`` gives it. **Nothing is reoriented or resampled.**
``spacing`` (napari's ``scale``) and ``origin`` (its ``translate``) are ITK's, reversed
to that order, so napari shows the voxels on the grid they were stored on, in
``metadata["unit"]`` (millimetres for medical formats; see :mod:`._units`). The
direction matrix (ITK convention: LPS, row-major, x/y/z) is *not* applied; it is kept
in ``ImageData.direction`` (and in the napari layer's ``metadata["direction"]``) and
written back by the writer, so a mask drawn on the image and saved as NIfTI/NRRD/MHA
lies exactly on the source scan. With an oblique or
flipped direction, ``origin`` is the position of the first voxel and the display is in
voxel-aligned (not patient) axes. So the look follows the storage: an axial CT from
DICOM (identity direction) shows in the radiological convention (patient's right on
the left, anterior up); a NIfTI stored RAS-first (direction diag(-1, -1, 1)) shows
rotated by 180 degrees compared to that.

A single-slice file (one DICOM image, a 2D NIfTI) stays ``(1, Y, X)`` so that its geometry (slice
position, thickness, direction) survives a round trip.

Format notes
------------
* DICOM: a folder is split into series (UID, orientation, matrix size) and gives its
  largest image series (``read_image(folder, series=id)`` another); slices are sorted
  along the normal and refused when they are not a regular volume (gantry tilt, gaps,
  duplicates). Rescale slope/intercept are applied; integer results that fit are int16
  (CT in Hounsfield units), per-slice (or per-frame) rescale gives float32; RT Dose is
  scaled by ``DoseGridScaling``; SEG opens as labels; RT Plan, SR, ECG... are refused by
  name. A multi-frame file's frames are placed by their own positions (sorted when
  stored out of order); big-endian files are decoded by pydicom; PixelData shorter than
  declared is refused; a Siemens mosaic opens as its volume (nibabel places it).
  :func:`check_seg_source` says before any segmentation whether a SEG can be written.
* NIfTI: a 2D image is ``(1, Y, X)``; 4D is ``(T, Z, Y, X)`` with a 3x3 direction (its
  time step is written back; NRRD/MetaImage refuse it).
* NRRD/MetaImage vector images that are not RGB (3D Slicer's ``.seg.nrrd`` layers) are
  ``(C, Z, Y, X)``.
* NaN voxels are kept and counted (``metadata["nan_voxels"]`` and ``["notes"]``).
* PNG/JPEG/BMP: spacing is 1 and origin 0; their DPI/pHYs fields are print sizes that
  tools set inconsistently, so honouring them would misalign an image and its mask.
  RGB whose three channels are equal (RGB-encoded grayscale, e.g. exported CT slices)
  opens as one channel; for JPEG, channels within 3 levels count as equal.
* TIFF: spacing from OME-XML or ImageJ metadata (see :mod:`._tiff`).
* Label maps, by name or content, binary 0/255 masks and JPEG masks: see
  :mod:`._content`. CT-like data (DICOM modality CT, or minimum <= -500 and maximum
  >= 100) gets ``window = (-160, 240)`` HU, a soft-tissue window.
"""

from __future__ import annotations

from ._content import SOFT_TISSUE_WINDOW, looks_like_hu, name_says_labels
from ._dicom_header import dicom_non_image
from ._dicom_seg import algorithm_identity, check_seg_source, write_dicom_seg
from ._formats import LABEL_WRITABLE, READABLE, WRITABLE, can_read, format_name, stem, suffix
from ._image import ImageData
from ._read import read_image
from ._write import write_image, write_labels

__all__ = [
    "LABEL_WRITABLE",
    "READABLE",
    "SOFT_TISSUE_WINDOW",
    "WRITABLE",
    "ImageData",
    "algorithm_identity",
    "can_read",
    "check_seg_source",
    "dicom_non_image",
    "format_name",
    "looks_like_hu",
    "name_says_labels",
    "read_image",
    "stem",
    "suffix",
    "write_dicom_seg",
    "write_image",
    "write_labels",
]
