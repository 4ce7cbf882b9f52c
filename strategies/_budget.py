"""The one documented cap that keeps examples CPU-friendly.

Every strategy in this package draws tensors of at most ``MAX_ELEMENTS``
elements, at most ``MAX_IMAGES`` images and at most ``MAX_RANKS`` ranks.
Raise them for a thorough run with the environment variable
``VVC_EXAMPLE_SCALE`` (an integer factor, default 1).
"""

import os

SCALE = max(1, int(os.environ.get("VVC_EXAMPLE_SCALE", "1")))
MAX_ELEMENTS = 4096 * SCALE
MAX_IMAGES = 8 * SCALE
MAX_RANKS = 6
MAX_LAYERS = 48
