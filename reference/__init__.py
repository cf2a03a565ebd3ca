"""Pure-NumPy reference implementation of the modified AlexNet (imports only NumPy and the standard library).

The layers follow the CS231n pattern: ``forward(x, ...) -> (out, cache)`` and
``backward(dout, cache) -> gradients``. All image tensors are NCHW, ``(N, C, H, W)``, and
every layer keeps its input's dtype (float32 in, float32 out). Bad input raises a
``ValueError`` that names the layer and the expected shape.

Layers (one concept per module):

* :mod:`reference.conv` -- 2-D convolution (cross-correlation), loop and im2col versions;
* :mod:`reference.batchnorm` -- batch norm for ``(N, C)`` and ``(N, C, H, W)``;
* :mod:`reference.relu`, :mod:`reference.pool` (max-pooling), :mod:`reference.linear`,
  :mod:`reference.dropout`, :mod:`reference.flatten`;
* :mod:`reference.loss` -- mean softmax cross-entropy;
* :mod:`reference.adam` -- the Adam optimiser, as ``torch.optim.Adam``;
* :mod:`reference.gradcheck` -- central-difference numeric gradients for testing.

The network itself is :mod:`reference.network`, laid out in :mod:`reference.architecture`.
"""

from __future__ import annotations

from reference.adam import AdamState, adam_step
from reference.batchnorm import batchnorm_backward, batchnorm_forward
from reference.conv import conv2d_backward, conv2d_backward_naive, conv2d_forward, conv2d_forward_naive
from reference.dropout import dropout_backward, dropout_forward
from reference.flatten import flatten_backward, flatten_forward
from reference.gradcheck import numeric_gradient
from reference.linear import linear_backward, linear_forward
from reference.loss import softmax_cross_entropy
from reference.pool import maxpool2d_backward, maxpool2d_backward_naive, maxpool2d_forward, maxpool2d_forward_naive
from reference.relu import relu_backward, relu_forward

__all__ = [
    "AdamState",
    "adam_step",
    "batchnorm_forward",
    "batchnorm_backward",
    "conv2d_forward",
    "conv2d_backward",
    "conv2d_forward_naive",
    "conv2d_backward_naive",
    "dropout_forward",
    "dropout_backward",
    "flatten_forward",
    "flatten_backward",
    "linear_forward",
    "linear_backward",
    "maxpool2d_forward",
    "maxpool2d_backward",
    "maxpool2d_forward_naive",
    "maxpool2d_backward_naive",
    "numeric_gradient",
    "relu_forward",
    "relu_backward",
    "softmax_cross_entropy",
]
