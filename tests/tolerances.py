"""Every float tolerance of the test suite, in one place.

Relative error is measured array-wise (not element-wise, which blows up where a value
happens to be near zero)::

    rel_error(a, b) = max|a - b| / max(max|a|, max|b|, tiny)

so 1e-10 means "agrees to about ten significant digits of the largest entry".
"""

from __future__ import annotations

import numpy as np

#: Single layer, NumPy vs torch, float64 (forward and backward).
LAYER_F64 = 1e-10
#: Single layer, NumPy vs torch, float32.
LAYER_F32 = 1e-5
#: Central-difference numeric gradient vs analytic backward, float64 (step 1e-6).
NUMERIC_GRAD = 1e-6
#: Whole network, eval-mode logits, float64.
NETWORK_LOGITS_F64 = 1e-9
#: Whole network, train-mode loss and every parameter gradient, float64.
NETWORK_GRAD_F64 = 1e-8
#: Training a tiny model a few steps through the device loader vs the torchvision loader, float64.
TRAINING_PARITY_F64 = 1e-11
#: Per-channel mean/std (exact rational arithmetic) vs np.mean / np.std (float64 pairwise sums).
CHANNEL_STATS_F64 = 1e-12
#: The JPEG copy's mean/std vs the 4-digit values in shared/data/README.md (absolute).
README_STATS_ABS = 1e-3


def rel_error(a, b) -> float:
    """Array-wise relative error, see the module docstring."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise AssertionError(f"shape mismatch: {a.shape} vs {b.shape}")
    if a.size == 0:
        return 0.0
    scale = max(np.abs(a).max(), np.abs(b).max(), np.finfo(np.float64).tiny)
    return float(np.abs(a - b).max() / scale)


def assert_close(actual, expected, tol: float, what: str = "") -> float:
    """Assert ``rel_error(actual, expected) <= tol`` and return the error (for reporting)."""
    err = rel_error(actual, expected)
    assert err <= tol, f"{what}: relative error {err:.3e} > tolerance {tol:.0e}"
    return err
