"""The one convention every target tensor follows.

``IGNORE_INDEX`` marks a position that is not scored: ``torch.nn.functional.cross_entropy``
skips it by default, and every metric, task and model in memzoo does the same.
"""

IGNORE_INDEX = -100
