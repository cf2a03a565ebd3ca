"""Exercises of the max-pool lesson: each question, its answer, and the code that computes them.

Rendered at the end of max-pool.md by ``exercise_kit.render("max-pool")``; the values marked
``{answer}`` are checked against PyTorch by ``tests/docs/test_docs.py``.
"""

import numpy as np

from exercise_kit import Exercise


def _pool(name):
    from reference.architecture import layer
    from reference.counts import count_layers

    return layer(name), {c.layer.name: c for c in count_layers()}[name]


def pool2_unused():
    L, c = _pool("Pool2")
    size, n_out = c.in_shape[1], c.out_shape[1]
    covered = (n_out - 1) * L.stride + L.kernel
    return {"answer": size ** 2 - covered ** 2, "size": size, "covered": covered, "last": size - 1}


def pool3_size():
    L, c = _pool("Pool3")
    return {"answer": c.out_shape[1], "size": c.in_shape[1], "k": L.kernel, "s": L.stride}


def pool3_windows_per_pixel():
    L, c = _pool("Pool3")
    uses = np.zeros(c.in_shape[1:], dtype=int)
    for i in range(c.out_shape[1]):
        for j in range(c.out_shape[2]):
            uses[i * L.stride: i * L.stride + L.kernel, j * L.stride: j * L.stride + L.kernel] += 1
    return {"answer": int(uses.max())}


def worked_gradient_sum():
    import lesson_pool

    return {"answer": int(lesson_pool.worked()[1].sum())}


EXERCISES = [
    Exercise(
        key="pool2-unused",
        question="How many values of each channel of Conv2's output does Pool2 never look at?",
        answer="{answer}: the {size}×{size} map minus the {covered}×{covered} its windows cover, that is row "
               "{last} and column {last}.",
        values=pool2_unused,
    ),
    Exercise(
        key="pool3-size",
        question="What size is Pool3's output, and why does it have no centre unit?",
        answer="{answer} per side, ⌊({size} − {k}) / {s}⌋ + 1: an even number of units has two middle ones "
               "along each axis, so the [receptive-field pictures](../receptive-fields.md) use unit (1, 1).",
        values=pool3_size,
    ),
    Exercise(
        key="pool3-shared",
        question="At most how many of Pool3's windows can one input pixel belong to?",
        answer="{answer}: a pixel on a shared row and a shared column is in two windows along each axis. If it "
               "is the maximum of all of them, its gradient is the sum of those outputs' gradients.",
        values=pool3_windows_per_pixel,
    ),
    Exercise(
        key="worked-dx-sum",
        question=r"In the worked example, what is the sum of all entries of $\partial L/\partial x$? Is that "
                 r"a coincidence?",
        answer="{answer}, the sum of the upstream gradient: max-pool moves every gradient value to one input "
               "and creates or destroys none.",
        values=worked_gradient_sum,
    ),
    Exercise(
        question="Write the backward pass with a loop over output positions, given the `argmax` of each "
                 "window, and compare it with `reference.pool.maxpool2d_backward` on a random input with "
                 "overlapping windows.",
        answer="`maxpool2d_backward_naive` above is one answer: for every output it adds the upstream value "
               "to the input its `argmax` names, with `+=`, so that overlapping windows add up.",
    ),
]
