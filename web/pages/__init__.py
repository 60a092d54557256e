"""One module per page family; each has a ``router``."""
