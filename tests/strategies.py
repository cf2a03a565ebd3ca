"""Hypothesis strategies shared by the tests of the NumPy reference layers.

Hypothesis draws the *shapes and hyperparameters* (so it can shrink a failure to the
smallest layer that shows it) and a ``seed``; the array contents come from
``np.random.default_rng(seed)``, which is quick and gives well-spread values.

Ranges (the real ones of the layers' tests): batch 1-8, channels 1-16, spatial size 1-20,
kernel 1-5, stride 1-3, padding 0-3, only valid combinations (the kernel fits the padded
input). ``small=True`` variants shrink everything for numeric gradient checks, which cost
two forward passes per input entry.

:func:`compare_with_torch` runs a layer's torch counterpart (in the test's dtype and in
float64) and :func:`check_errors` asserts the relative errors against the tolerance of the
dtype, recording every value in :data:`LAYER_ERRORS`; ``tests/layer_errors.py`` drives the
same comparisons over hundreds of draws and prints the largest error per layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple

import numpy as np
import torch
from hypothesis import strategies as st

from tolerances import LAYER_F32, LAYER_F64, rel_error

#: (layer and quantity, dtype name, relative error vs torch) of every comparison run so far.
LAYER_ERRORS: list[tuple[str, str, float]] = []

DTYPES = (np.float32, np.float64)
seeds = st.integers(min_value=0, max_value=2**32 - 1)


def layer_tolerance(dtype) -> float:
    """The NumPy-vs-torch tolerance for ``dtype`` (float32 or float64)."""
    return LAYER_F64 if np.dtype(dtype) == np.float64 else LAYER_F32


class Agreement(NamedTuple):
    """How one NumPy result compares with PyTorch's.

    Attributes:
        vs_torch: relative error against torch computing in the same dtype.
        vs_exact: relative error against the exact answer for the same (possibly
            float32-rounded) inputs: torch in float64, unless given independently.
        torch_vs_exact: torch's own relative error in the same dtype against that answer
            (0 in float64 when torch's float64 result is the exact answer).
    """

    vs_torch: float
    vs_exact: float
    torch_vs_exact: float


def compare_with_torch(
    ours: dict[str, np.ndarray],
    run_torch: Callable[[torch.dtype], dict[str, np.ndarray]],
    dtype,
    exact: dict[str, np.ndarray] | None = None,
) -> dict[str, Agreement]:
    """Compare NumPy results with PyTorch's, quantity by quantity.

    Args:
        ours: quantity (``"forward"``, ``"dx"``, ...) -> NumPy result in ``dtype``.
        run_torch: runs the same computation in torch on the same inputs converted to the
            given torch dtype, returning the same quantities as NumPy arrays.
        dtype: the NumPy dtype of the run.
        exact: quantities known exactly by other means (e.g. high-precision arithmetic);
            they replace torch's float64 results as the exact answer.

    Returns:
        quantity -> :class:`Agreement`.
    """
    for name, value in ours.items():
        assert np.asarray(value).dtype == dtype, f"{name}: dtype changed from {np.dtype(dtype)} to {np.asarray(value).dtype}"
    torch64 = run_torch(torch.float64)
    same = torch64 if np.dtype(dtype) == np.float64 else run_torch(torch.float32)
    reference = {**torch64, **(exact or {})}
    return {
        name: Agreement(rel_error(ours[name], same[name]), rel_error(ours[name], reference[name]), rel_error(same[name], reference[name]))
        for name in ours
    }


def check_errors(layer: str, dtype, agreements: dict[str, Agreement]) -> None:
    """Record every error vs torch in :data:`LAYER_ERRORS`, then assert the layer agrees.

    A quantity passes when its relative error against torch in the same dtype is within
    the dtype's tolerance. One more case passes: torch's own result may be further than
    that from the exact answer -- in float32 for an ill-conditioned sum (a bias gradient
    that cancels to almost zero), in either dtype for a loss of 1e-20 that torch rounds to
    0 -- and then ours must be at least as close to the exact answer as torch's. Where
    torch's float64 result *is* the exact answer (no independent one given), this second
    case cannot apply.

    Args:
        layer: the layer's name, e.g. ``"conv2d"``.
        dtype: the dtype the comparison ran in.
        agreements: from :func:`compare_with_torch`.
    """
    name = np.dtype(dtype).name
    tol = layer_tolerance(dtype)
    failures = {}
    for what, a in agreements.items():
        LAYER_ERRORS.append((f"{layer} {what}", name, a.vs_torch))
        if not (a.vs_torch <= tol or a.vs_exact <= a.torch_vs_exact):
            failures[what] = f"{a.vs_torch:.2e} vs torch, {a.vs_exact:.2e} vs exact (torch: {a.torch_vs_exact:.2e})"
    assert not failures, f"{layer} ({name}): relative error above {tol:.0e}: {failures}"


def _pair_or_int(draw, values: tuple[int, int]):
    """Pass a hyperparameter as an int when both axes agree (half the time), else as a pair."""
    if values[0] == values[1] and draw(st.booleans()):
        return values[0]
    return values


@dataclass(frozen=True)
class ConvCase:
    """One convolution: shapes, hyperparameters (as passed to the layer) and a data seed."""

    x_shape: tuple  # (N, C, H, W)
    w_shape: tuple  # (F, C, KH, KW)
    stride: object  # int or (sh, sw)
    padding: object  # int or (ph, pw)
    seed: int


@st.composite
def conv_cases(draw, small: bool = False) -> ConvCase:
    """Valid convolutions: batch 1-8, channels/filters 1-16, size 1-20, kernel 1-5, stride 1-3, padding 0-3."""
    max_n, max_c, max_size, max_k = (2, 3, 6, 3) if small else (8, 16, 20, 5)
    n = draw(st.integers(1, max_n))
    c = draw(st.integers(1, max_c))
    f = draw(st.integers(1, max_c))
    kh, kw = draw(st.integers(1, max_k)), draw(st.integers(1, max_k))
    ph, pw = draw(st.integers(0, 3)), draw(st.integers(0, 3))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    # The kernel must fit the padded input: H + 2 ph >= KH.
    h = draw(st.integers(max(1, kh - 2 * ph), max_size))
    w = draw(st.integers(max(1, kw - 2 * pw), max_size))
    return ConvCase((n, c, h, w), (f, c, kh, kw), _pair_or_int(draw, (sh, sw)), _pair_or_int(draw, (ph, pw)), draw(seeds))


@dataclass(frozen=True)
class PoolCase:
    """One max-pool: input shape, kernel, stride (``None`` = kernel) and a data seed."""

    x_shape: tuple  # (N, C, H, W)
    kernel: object  # int or (KH, KW)
    stride: object  # None, int or (sh, sw)
    seed: int


@st.composite
def pool_cases(draw, small: bool = False) -> PoolCase:
    """Valid max-pools: batch 1-8, channels 1-16, size 1-20, kernel 1-5, stride 1-3 or the default."""
    max_n, max_c, max_size, max_k = (2, 2, 6, 3) if small else (8, 16, 20, 5)
    n = draw(st.integers(1, max_n))
    c = draw(st.integers(1, max_c))
    kh, kw = draw(st.integers(1, max_k)), draw(st.integers(1, max_k))
    h = draw(st.integers(kh, max(kh, max_size)))
    w = draw(st.integers(kw, max(kw, max_size)))
    if draw(st.booleans()):
        stride = None
    else:
        stride = _pair_or_int(draw, (draw(st.integers(1, 3)), draw(st.integers(1, 3))))
    return PoolCase((n, c, h, w), _pair_or_int(draw, (kh, kw)), stride, draw(seeds))


@dataclass(frozen=True)
class BatchNormCase:
    """One batch norm: input shape ``(N, C)`` or ``(N, C, H, W)``, hyperparameters, seed."""

    x_shape: tuple
    momentum: float
    eps: float
    seed: int


@st.composite
def batchnorm_cases(draw, small: bool = False, min_values: int = 3) -> BatchNormCase:
    """Batch norms in 2-D or 4-D with at least ``min_values`` values per channel.

    Why a minimum: the training-mode input gradient removes from ``dout * gamma`` its
    projections on the constant vector and on ``x_hat``, per channel. With ``M`` values per
    channel what is left lives in ``M - 2`` dimensions: with ``M = 2`` it is identically zero
    (the normalised values are always +1 and -1), with ``M = 3`` it is often a tiny residue
    of cancelling terms. A *relative* error then compares round-off with round-off: two
    correct float32 implementations (ours and torch's) differ by up to 5e-4 at ``M = 3`` and
    by less than 2e-6 from ``M = 5`` on. So float64 tests use ``min_values=3`` and float32
    tests ``min_values=5`` (:func:`batchnorm_min_values`).
    """
    max_n, max_c, max_size = (4, 3, 3) if small else (8, 16, 20)
    n = draw(st.integers(1, max_n))
    c = draw(st.integers(1, max_c))
    if draw(st.booleans()):
        shape = (max(n, min_values), c)
    else:
        h, w = draw(st.integers(1, max_size)), draw(st.integers(1, max_size))
        if n * h * w < min_values:
            h = -(-min_values // (n * w))  # the smallest height giving min_values values
        shape = (n, c, h, w)
    momentum = draw(st.one_of(st.just(0.1), st.floats(0.0, 1.0)))
    eps = draw(st.one_of(st.just(1e-5), st.floats(1e-6, 1e-1)))
    return BatchNormCase(shape, momentum, eps, draw(seeds))


def batchnorm_min_values(dtype) -> int:
    """Values per channel a batch-norm comparison in ``dtype`` needs (see :func:`batchnorm_cases`)."""
    return 3 if np.dtype(dtype) == np.float64 else 5


#: Any JSON value, nested a little: what a damaged or hand-edited JSON field may hold.
JSON_VALUES = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70),
                                     st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=8)),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner,
                                                                                         max_size=4), max_leaves=10)
