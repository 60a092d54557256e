"""Feature packages, one per feature: __init__ holds setup() only."""
