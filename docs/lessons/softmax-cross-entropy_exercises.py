"""Exercises of the softmax cross-entropy lesson: questions, answers, and the code that computes them.

Rendered at the end of softmax-cross-entropy.md by ``exercise_kit.render("softmax-cross-entropy")``;
the values marked ``{answer}`` are checked against PyTorch by ``tests/docs/test_docs.py``.
"""

import numpy as np

from exercise_kit import Exercise


def uniform_loss():
    from reference.loss import softmax_cross_entropy

    return {"answer": f"{float(softmax_cross_entropy(np.zeros((1, 10)), np.array([3]))[0]):.4f}"}


def worked_loss():
    import lesson_train

    return {"answer": f"{lesson_train.loss_worked()[0]:.4f}"}


def gradient_row_sum():
    import lesson_train

    return {"answer": f"{abs(lesson_train.loss_worked()[2].sum()):.0f}"}


EXERCISES = [
    Exercise(
        key="loss-uniform",
        question="What is the loss of a network whose ten logits are all equal?",
        answer="{answer} = log 10, whatever the label: every class gets probability 1/10.",
        values=uniform_loss,
    ),
    Exercise(
        key="loss-worked",
        question="What is the loss of the worked example?",
        answer="{answer}: −log of the right class's probability.",
        values=worked_loss,
    ),
    Exercise(
        key="grad-row-sum",
        question=r"What do the entries of one row of $\partial L/\partial s$ add up to?",
        answer="{answer}: the probabilities sum to 1 and so does the one-hot label.",
        values=gradient_row_sum,
    ),
    Exercise(
        question="This network's last layer is BN8, a BatchNorm over the logits. What does it fix about them "
                 "at the start of training, and why could that matter for the loss? (Compare the loss "
                 "figure's slope with logits of standard deviation 1 and of 100.)",
        answer=r"""
            With its initial $\gamma = 1$ and $\beta = 0$, BN8 gives each of the ten logits mean 0 and
            standard deviation 1 over the batch, whatever the layers before it produce. Logits of that
            size sit in the curved middle of the figure: the loss starts near $\log 10$, and the gradient
            $p_k - [k = y]$ is graded, larger for images that are more wrong. Logits of standard
            deviation 100 would put almost every image far out on the straight parts: a softmax that is
            nearly one-hot, a loss of the size of the logit gaps, images already right with almost no
            gradient, and images that are wrong with a gradient of nearly $+1$ on the class they chose
            and $-1$ on the right one, however wrong they are. Later in training BN8 leaves the logits'
            scale to its ten $\gamma$: the network can become more confident only by growing them.
            """,
    ),
]
