"""The Adam optimiser, step for step as ``torch.optim.Adam`` (``amsgrad=False``, ``maximize=False``).

For each parameter ``theta`` with gradient ``g``, at its step ``t = 1, 2, ...``::

    g     = g + weight_decay * theta              (only if weight_decay != 0: L2 form, not AdamW)
    m     = m + (1 - beta1) * (g - m)             (= beta1 * m + (1 - beta1) * g)
    v     = beta2 * v + (1 - beta2) * g * g
    theta = theta - lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)

``m`` and ``v`` start at zero. The operations are written in the order PyTorch's
single-tensor implementation uses, so float64 results agree to the last few bits.

The step count is kept **per parameter**, as in PyTorch: a parameter without a gradient in
a step (absent from ``grads``) is not updated and its count does not advance.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field

import numpy as np

from reference._checks import check_float_array, check_same_dtype

__all__ = ["AdamState", "adam_step"]

_LAYER = "adam_step"


@dataclass
class AdamState:
    """Adam's per-parameter state, keyed like the parameters.

    Attributes:
        step: number of updates so far, per parameter.
        exp_avg: first-moment estimate ``m``, the parameter's shape.
        exp_avg_sq: second-moment estimate ``v``, the parameter's shape.

    Start with ``AdamState()``; :func:`adam_step` fills it in on first use of a parameter.
    """

    step: dict[str, int] = field(default_factory=dict)
    exp_avg: dict[str, np.ndarray] = field(default_factory=dict)
    exp_avg_sq: dict[str, np.ndarray] = field(default_factory=dict)


def adam_step(
    params: dict,
    grads: dict,
    state: AdamState,
    lr: float = 1e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
) -> dict:
    """One Adam update of every parameter that has a gradient, **in place**.

    Args:
        params: name -> parameter array (float32/float64, any shape). Updated in place.
        grads: name -> gradient, the parameter's shape and dtype. Names must be in ``params``;
            parameters absent from ``grads`` are skipped (like ``grad is None`` in PyTorch).
        state: the optimiser state, updated in place.
        lr: learning rate, ``>= 0``.
        betas: ``(beta1, beta2)``, each in ``[0, 1)``.
        eps: added to the denominator, ``>= 0``.
        weight_decay: L2 penalty coefficient, ``>= 0`` (PyTorch's ``Adam``, not ``AdamW``).

    Returns:
        ``params`` (the same dict, for chaining).

    Raises:
        ValueError: bad hyperparameters, a gradient for an unknown name, or a gradient whose
            shape or dtype differs from its parameter's; raised before anything is updated.
    """
    _check_inputs(params, grads, lr, betas, eps, weight_decay)
    beta1, beta2 = betas
    for name, grad in grads.items():
        param = params[name]
        if name not in state.step:
            state.step[name] = 0
            state.exp_avg[name] = np.zeros_like(param)
            state.exp_avg_sq[name] = np.zeros_like(param)
        state.step[name] += 1
        t = state.step[name]
        m, v = state.exp_avg[name], state.exp_avg_sq[name]

        if weight_decay != 0:
            grad = grad + weight_decay * param  # L2 penalty folded into the gradient
        m += (1 - beta1) * (grad - m)  # in place: first moment
        v *= beta2
        v += (1 - beta2) * (grad * grad)  # in place: second moment

        step_size = lr / (1 - beta1**t)
        denom = np.sqrt(v) / math.sqrt(1 - beta2**t) + eps  # bias-corrected sqrt(v) + eps
        param -= step_size * (m / denom)  # in place: the parameter itself
    return params


# ----------------------------------------------------------------------------------------------
# Argument checks, called first by adam_step; a bad argument raises a ValueError that starts
# with "adam_step:" (see reference._checks).
# ----------------------------------------------------------------------------------------------


def _check_inputs(params: dict, grads: dict, lr, betas, eps, weight_decay) -> None:
    """Hyperparameters in range; every gradient named like, shaped like and typed like its parameter."""
    beta1, beta2 = betas
    for name, value, ok in (
        ("lr", lr, lambda v: v >= 0),
        ("beta1", beta1, lambda v: 0 <= v < 1),
        ("beta2", beta2, lambda v: 0 <= v < 1),
        ("eps", eps, lambda v: v >= 0),
        ("weight_decay", weight_decay, lambda v: v >= 0),
    ):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not ok(value):
            raise ValueError(f"{_LAYER}: invalid {name} = {value!r} (lr, eps, weight_decay >= 0; betas in [0, 1))")
    unknown = sorted(set(grads) - set(params))
    if unknown:
        raise ValueError(f"{_LAYER}: gradients for unknown parameters {unknown}; grads must be keyed like params")
    for name, grad in grads.items():
        param = params[name]
        check_float_array(_LAYER, f"params[{name!r}]", param, "(any shape)", range(0, 33))
        check_float_array(_LAYER, f"grads[{name!r}]", grad, f"{param.shape} (the parameter's shape)", range(0, 33))
        if grad.shape != param.shape:
            raise ValueError(f"{_LAYER}: grads[{name!r}] has shape {grad.shape}, its parameter has {param.shape}")
        check_same_dtype(_LAYER, f"grads[{name!r}]", grad, param, f"params[{name!r}]")
