"""Exercises of the Adam lesson: each question, its answer, and the code that computes them.

Rendered at the end of adam.md by ``exercise_kit.render("adam")``; the values marked ``{answer}``
are checked against PyTorch by ``tests/docs/test_docs.py``.
"""

from exercise_kit import Exercise


def first_step():
    import lesson_train
    from cifar_alexnet.training.recipes import ORIGINAL

    return {"answer": f"{abs(lesson_train.adam_worked()[0][6]):.6f}", "lr": f"{ORIGINAL.lr:g}"}


def v_hat_factor():
    from cifar_alexnet.training.recipes import ORIGINAL

    return {"answer": f"{1 / (1 - ORIGINAL.betas[1]):,.0f}", "beta2": f"{ORIGINAL.betas[1]:g}"}


def state_size():
    from reference.counts import count_layers, totals

    parameters = totals(count_layers())["weights"]
    return {"answer": 2 * parameters, "parameters": parameters}


EXERCISES = [
    Exercise(
        key="adam-first-step",
        question="How far does a parameter move in Adam's first step with the original recipe (learning "
                 "rate {lr}), for any non-zero gradient?",
        answer="{answer}: the learning rate, since m̂₁/√v̂₁ = g/|g| (up to ε).",
        values=first_step,
    ),
    Exercise(
        key="adam-vhat-factor",
        question=r"By what factor does the bias correction enlarge $v$ at the first step ($\beta_2$ = {beta2})?",
        answer="{answer} = 1 / (1 − β₂).",
        values=v_hat_factor,
    ),
    Exercise(
        key="adam-state",
        question="The network has {parameters} learnable parameters. How many numbers does Adam keep in its "
                 "state for it (not counting the step counters)?",
        answer="{answer}: m and v for every learnable parameter, twice the model's size.",
        values=state_size,
    ),
    Exercise(
        question="The biases in front of BatchNorm get a zero gradient (see the [BatchNorm lesson](batchnorm.md)). "
                 "What does Adam do with them? (Look at the update when $g_t = 0$ for every $t$.)",
        answer=r"""
            With $g_t = 0$ at every step, $m_t$ and $v_t$ stay at their starting value 0, so the update
            is $\eta\cdot 0/(\sqrt{0}+\epsilon) = 0$: in exact arithmetic the biases keep their initial
            values for the whole run ($\epsilon$ is what keeps the update from being $0/0$). In float32
            the gradient is rounding noise rather than zero, and the division by $\sqrt{\hat v_t}$, which
            makes Adam blind to a gradient's scale, makes it blind to how small the noise is: the biases
            take steps of nearly $\eta$ in random directions. The
            [BatchNorm lesson](batchnorm.md#why-the-bias-before-batchnorm-gets-an-exact-zero-gradient)
            measures how far the first step moves them.
            """,
    ),
]
