"""The two names that tie data, models and training together, defined once.

A sample's target is a class index for a one-head classifier, or a dict by task name; with
slice supervision that dict also holds the per-slice targets under `SLICES`, which is why no
task may take that name.
"""

TARGET = "target"
"""The name of the only task of a one-head model (``model(x)`` then returns a tensor, not a dict)."""
SLICES = "slices"
"""Key of the per-slice targets ``(D, labels)`` in a sample's target dict."""
