"""How a painted mask's grey levels are read (white = repaint, black = keep), on both sides of the
queue: the studio checks an upload with it, the worker composites the result with it.

Grey levels are kept, so a feathered edge blends the repaint into what is kept. Only near-black
counts as black and near-white as white: a JPEG's noise must not leak changes into what is kept,
and whatever the mask says is black stays exactly as it was.
"""

from __future__ import annotations

EDGE = 8  # levels below this are black (kept exactly), above 255 - EDGE white


def mask_level(value: int) -> int:
    if value < EDGE:
        return 0
    if value > 255 - EDGE:
        return 255
    return value
