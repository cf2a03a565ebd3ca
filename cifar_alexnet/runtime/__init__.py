"""The machinery a training run needs but a reader of the trainer can skip.

Signals and exit codes, atomic file writes, the choice of device and precision, and the
helpers of multi-process (``torchrun``) runs. The trainer calls them in a few named places.
"""
