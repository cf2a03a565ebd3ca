"""Exercises of the training-step lesson: each question, its answer, and the code that computes them.

Rendered at the end of training-step.md by ``exercise_kit.render("training-step")``; the values
marked ``{answer}`` are checked against PyTorch by ``tests/docs/test_docs.py``.
"""

import numpy as np

from exercise_kit import Exercise


def logits_shape():
    from cifar_alexnet.training.recipes import ORIGINAL
    from reference.counts import count_layers

    return {"answer": f"{ORIGINAL.batch_size} × {count_layers()[-1].out_shape[0]}", "batch": ORIGINAL.batch_size}


def largest_cache():
    import lesson_train
    from cifar_alexnet.training.recipes import ORIGINAL

    name, numbers = max(lesson_train.cache_sizes(), key=lambda size: size[1])
    megabytes = numbers * ORIGINAL.batch_size * np.dtype(np.float32).itemsize / 1e6
    return {"answer": f"{name}: {numbers:,} numbers per image", "megabytes": f"{megabytes:,.0f} MB",
            "batch": ORIGINAL.batch_size}


EXERCISES = [
    Exercise(
        key="step-batch-512-logits",
        question="What shape do the logits of a batch of the original recipe ({batch} images) have, and "
                 "therefore the gradient that enters the backward pass?",
        answer="{answer}: one row per image, one column per class.",
        values=logits_shape,
    ),
    Exercise(
        key="step-largest-cache",
        question="Why does the forward pass have to keep a cache for the backward pass, and which layer's "
                 "cache is the largest? (Look at the [convolution lesson](convolution.md#the-vectorised-version-im2col).)",
        answer=r"""
            Each layer's backward pass needs values that only its forward pass saw: a convolution or a
            linear layer its input (for $\partial L/\partial W$), ReLU where its input was positive,
            max-pool where each window's maximum was, BatchNorm $\hat x$ and $1/\tilde\sigma$, dropout its
            mask. Without the cache, the backward pass would have to run the forward pass again. The
            largest cache in `reference.network`, counted from its forward pass when this page was built:
            {answer}, its im2col matrix: one column per output position, holding the 3×3 patch of every
            input channel around it, so each input value is copied once for every kernel position that
            covers it. For a batch of the original recipe ({batch} images) in float32 that is
            {megabytes} for this one
            layer. PyTorch's convolution keeps its input instead and rebuilds what it needs in the
            backward pass.
            """,
        values=largest_cache,
        checked={"megabytes": "step-largest-cache-mb"},
    ),
    Exercise(
        question="In `train_step` above, the BatchNorm buffers are updated after the optimiser step. Does the "
                 "order matter? What would change if the running statistics were used during training?",
        answer=r"""
            The order does not matter. The new running statistics come from this batch's mean and
            variance, computed in the forward pass before any parameter changes, and the optimiser step
            does not read them (in training mode BatchNorm normalises with the batch's own statistics),
            so either order gives the same buffers and the same parameters. PyTorch updates them inside
            the forward pass. Normalising with the running statistics during training would make every
            BatchNorm a fixed scale and shift within a step, as in the eval-mode exercise of the
            [BatchNorm lesson](batchnorm.md#exercises): the gradient would lose the two terms that take
            out its components along the mean and along $\hat x$, so nothing would stop a step from
            shifting and scaling a layer's outputs, and the running averages, which trail the changing
            weights by about $1/\alpha$ steps (momentum $\alpha$), would normalise with stale numbers.
            """,
    ),
]
