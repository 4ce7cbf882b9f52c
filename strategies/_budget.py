"""The one documented cap that keeps examples CPU-friendly.

Every strategy in this package draws tensors of at most ``MAX_ELEMENTS``
elements, at most ``MAX_IMAGES`` images (with pixels) and at most
``MAX_RANKS`` ranks of a data-parallel group, and encoders of at most
``MAX_LAYERS`` layers. Inputs that are plain numbers run nothing, and go
further: image size lists for the load-balance assignment up to
``MAX_SIZES`` sizes, rank counts for it up to ``MAX_BALANCE_RANKS``, and
row batches of the plain data-parallel model up to ``MAX_SIZES`` rows.
Raise them for a thorough run with the environment variable
``VVC_EXAMPLE_SCALE`` (an integer factor, default 1; ranks and layers stay).

A strategy asked for more than a cap allows refuses with
:class:`hypothesis.errors.InvalidArgument` naming the cap; it never clamps
silently.
"""

import os

SCALE = max(1, int(os.environ.get("VVC_EXAMPLE_SCALE", "1")))
MAX_ELEMENTS = 4096 * SCALE
MAX_IMAGES = 8 * SCALE
MAX_RANKS = 6
MAX_LAYERS = 48
MAX_SIZES = 3 * MAX_IMAGES  # image size lists (plain ints) and plain data-parallel row batches
MAX_BALANCE_RANKS = 2 * MAX_RANKS  # rank counts of the load-balance assignment (arithmetic, no group)
