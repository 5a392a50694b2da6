"""``python -m napari_res101unet`` runs the command line (same as ``napari-res101unet``)."""

import sys

from .cli import main

sys.exit(main())
