"""Exercises of the ReLU lesson: each question, its answer, and the code that computes them.

Rendered at the end of relu.md by ``exercise_kit.render("relu")``; the values marked ``{answer}``
are checked against PyTorch by ``tests/docs/test_docs.py``.
"""

from exercise_kit import Exercise


def gradient_at_zero():
    import lesson_simple
    from reference.relu import relu_backward, relu_forward

    dx = relu_backward(lesson_simple.RELU_DOUT, relu_forward(lesson_simple.RELU_X)[1])
    return {"answer": f"{dx[0, 2]:g}"}


EXERCISES = [
    Exercise(
        key="relu-dx",
        question="In the worked example, what gradient reaches the input that was exactly 0?",
        answer="{answer}: the convention of PyTorch and of the reference at $x = 0$.",
        values=gradient_at_zero,
    ),
    Exercise(
        question="A unit whose input is negative for every image of the training set never receives a "
                 "gradient. Why can it not recover by itself, and why does BatchNorm in front of it make that "
                 "unlikely?",
        answer=r"""
            ReLU passes back $\delta_i\,[x_i > 0]$, so a unit that is negative for every image passes
            back nothing: the weights and the bias that compute its input get no gradient through it,
            and nothing pushes them towards positive inputs. Only the layers further back could change
            its inputs, and no gradient asks them to. In this network the input of every ReLU is a
            BatchNorm output $\gamma\hat x + \beta$, and $\hat x$ has mean 0 over every batch, so some of
            its values are positive in every batch (unless all are equal). For all of the unit's inputs
            to be negative, $\beta$ would have to fall below $-\gamma\max\hat x$, and at the start
            ($\gamma = 1$, $\beta = 0$) about half of them are positive (the figure above).
            """,
    ),
    Exercise(
        question=r"Show that a stack of linear layers without ReLU between them equals a single linear "
                 r"layer, by multiplying out $W_2 (W_1 x + b_1) + b_2$.",
        answer=r"""
            $W_2(W_1x + b_1) + b_2 = (W_2W_1)\,x + (W_2b_1 + b_2)$: one linear layer with weight
            $W = W_2W_1$ and bias $b = W_2b_1 + b_2$. By induction, any number of stacked linear layers
            is one linear layer (whose weight matrix can only lose rank in the product, never gain it).
            Depth without a non-linearity adds nothing that one layer cannot compute; ReLU's kink at 0 is
            what makes the second layer worth having.
            """,
    ),
]
