"""Exercises of the dropout lesson: each question, its answer, and the code that computes them.

Rendered at the end of dropout.md by ``exercise_kit.render("dropout")``; the values marked
``{answer}`` are checked against PyTorch by ``tests/docs/test_docs.py``.
"""

from exercise_kit import Exercise


def kept_scale():
    from reference.architecture import DROPOUT_P

    return {"answer": f"{1 / (1 - DROPOUT_P):g}", "p": f"{DROPOUT_P:g}"}


EXERCISES = [
    Exercise(
        key="drop-scale",
        question="By what factor are the kept values scaled in this network ($p$ = {p})?",
        answer="{answer} = 1 / (1 − p).",
        values=kept_scale,
    ),
    Exercise(
        question="Why would forgetting `model.eval()` before testing lower the accuracy, even though the "
                 "expected output is unchanged?",
        answer="""
            In training mode every forward pass draws a new mask, so each prediction is made by a random
            thinned network. Each dropout output is right *on average*, but the layers after it are not
            linear (BatchNorm, ReLU, and finally the argmax that picks the class), so the noise does not
            average out in the class chosen: an image near a decision boundary lands on either side by
            chance, and the same image can get different answers twice. `model.train()` also puts
            BatchNorm on batch statistics, so an image's prediction would depend on the other images in
            its batch. `model.eval()` makes dropout the identity and BatchNorm use its running
            estimates: one fixed answer per image.
            """,
    ),
    Exercise(
        question="Original (non-inverted) dropout did not scale during training and multiplied by $1 - p$ "
                 "at test time instead. Show that both give the same expected output.",
        answer=r"""
            Non-inverted: in training $y_i = m_i x_i$, so $\mathbb{E}[y_i] = (1-p)\,x_i$, and at test time
            $y_i = (1-p)\,x_i$, the same. Inverted: $\mathbb{E}[y_i] = x_i$ in training (the equation
            above) and $y_i = x_i$ at test time, the same again. In both, the test-time output is the
            expected training-time output. The two differ only by the constant factor $1-p$ on the
            layer's output, which the weights of the next linear layer absorb (and the BatchNorm behind
            FC1 and FC2 removes anyway); inverted dropout puts the factor into training, so the trained
            network needs no change for inference.
            """,
    ),
]
