"""Softmax cross-entropy, averaged over the batch (PyTorch's ``F.cross_entropy``, reduction ``"mean"``).

For logits ``s: (N, K)`` and integer labels ``y: (N,)``::

    loss = -1/N * sum over n of log softmax(s[n])[y[n]]
    dloss/ds[n, k] = (softmax(s[n])[k] - [k == y[n]]) / N

Numerical stability:

* ``log softmax(s) = s - logsumexp(s)`` with the row maximum ``m`` subtracted first,
  ``logsumexp(s) = m + log(sum(exp(s - m)))``, so no ``exp`` ever overflows, even for
  logits of 1e4;
* the sum is ``1 + rest`` (the maximum contributes ``exp(0) = 1``), and
  ``log1p(rest)`` keeps the digits of a tiny ``rest`` that ``log(1 + rest)`` would round
  away: a confident, correct prediction gets its true small loss (say 1e-9), not 0;
* likewise the label's gradient entry ``p - 1`` is computed as ``expm1(log p)``, which does
  not cancel when ``p`` is close to 1.
"""

from __future__ import annotations

import numpy as np

from reference._checks import check_float_array

__all__ = ["softmax_cross_entropy"]

_LAYER = "softmax_cross_entropy"


def softmax_cross_entropy(logits: np.ndarray, labels: np.ndarray):
    """Mean softmax cross-entropy loss and its gradient.

    Args:
        logits: unnormalised class scores, ``(N, K)``, ``N >= 1``.
        labels: class indices, ``(N,)``, integer dtype, each in ``[0, K)``.

    Returns:
        ``(loss, dlogits)``: ``loss`` a NumPy scalar of the logits' dtype; ``dlogits`` the
        gradient of ``loss``, ``(N, K)``.

    Raises:
        ValueError: wrong ranks, an empty batch, non-integer labels, a batch-size mismatch,
            or labels outside ``[0, K)``.
    """
    _check_inputs(logits, labels)
    N = logits.shape[0]
    rows = np.arange(N)
    top = logits.argmax(axis=1)  # (N,), one largest logit per row
    shifted = logits - logits[rows, top][:, None]  # (N, K), the largest entry of each row is 0
    exp_shifted = np.exp(shifted)  # (N, K), in [0, 1]; exp_shifted[n, top[n]] = 1
    exp_shifted[rows, top] = 0  # drop the maximum's own exp(0) = 1: what is left is the rest
    log_sum = np.log1p(exp_shifted.sum(axis=1, keepdims=True))  # (N, 1): log(1 + rest), accurate for a tiny rest
    log_probs = shifted - log_sum  # (N, K), log softmax
    loss = -log_probs[rows, labels].mean()  # scalar of logits.dtype

    dlogits = np.exp(log_probs)  # (N, K), softmax
    dlogits[rows, labels] = np.expm1(log_probs[rows, labels])  # softmax - 1 without cancellation when p ~ 1
    dlogits /= N
    return loss, dlogits


# ----------------------------------------------------------------------------------------------
# Argument checks, called first by softmax_cross_entropy; a bad argument raises a ValueError that
# names the function (see reference._checks).
# ----------------------------------------------------------------------------------------------


def _check_inputs(logits, labels) -> None:
    """``logits`` a non-empty float ``(N, K)`` array, ``labels`` ``N`` integers in ``[0, K)``."""
    check_float_array(_LAYER, "logits", logits, "(N, K)", (2,))
    N, K = logits.shape
    if N == 0 or K == 0:
        raise ValueError(f"{_LAYER}: logits (N, K) = {logits.shape} is empty; need N >= 1 and K >= 1")
    if not isinstance(labels, np.ndarray) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"{_LAYER}: labels must be an integer NumPy array of shape (N,) = ({N},), "
            f"got {type(labels).__name__} of dtype {getattr(labels, 'dtype', None)}"
        )
    if labels.shape != (N,):
        raise ValueError(
            f"{_LAYER}: labels must have shape (N,) = ({N},) to match logits {logits.shape}, got {labels.shape}"
        )
    if labels.min() < 0 or labels.max() >= K:
        bad = labels[(labels < 0) | (labels >= K)]
        raise ValueError(
            f"{_LAYER}: labels must be class indices in [0, {K}) for logits of shape (N, K) = {logits.shape}, "
            f"got out-of-range values {bad[:5].tolist()}"
        )
