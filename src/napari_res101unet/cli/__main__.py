"""``python -m napari_res101unet.cli``: the command line."""

import sys

from . import main

sys.exit(main())
