"""What the features share and the shell shows: views, captions, image sending.

Layering: the shell (everything in bot/ outside bot/exts/) and this package import no feature;
a feature imports the shell and this package, never another feature. A shared view whose button
needs a feature's logic reaches it by cog name at click time (tests/unit/test_layering.py).
"""
