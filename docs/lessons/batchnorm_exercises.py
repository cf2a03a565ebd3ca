"""Exercises of the BatchNorm lesson: each question, its answer, and the code that computes them.

Rendered at the end of batchnorm.md by ``exercise_kit.render("batchnorm")``; the values marked
``{answer}`` are checked against PyTorch by ``tests/docs/test_docs.py``.
"""

from exercise_kit import Exercise


def _bn_layers():
    from reference.counts import count_layers

    return [c for c in count_layers() if c.layer.kind in ("bn2d", "bn1d")]


def all_parameters():
    layers = _bn_layers()
    conv = [c.in_shape[0] for c in layers if c.layer.kind == "bn2d"]
    linear = [c.in_shape[0] for c in layers if c.layer.kind == "bn1d"]
    return {"answer": sum(c.weights for c in layers), "conv": ", ".join(map(str, conv)),
            "linear": ", ".join(map(str, linear)), "first": layers[0].layer.name, "last_conv": f"BN{len(conv)}",
            "first_linear": f"BN{len(conv) + 1}", "last": layers[-1].layer.name}


def bn1_values():
    from cifar_alexnet.training.recipes import ORIGINAL

    bn1 = _bn_layers()[0]
    C, H, W = bn1.in_shape
    return {"answer": ORIGINAL.batch_size * H * W, "batch": ORIGINAL.batch_size, "shape": f"{C}×{H}×{W}",
            "hw": f"{H} × {W}"}


def worked_dbeta():
    import lesson_bn

    return {"answer": f"{lesson_bn.worked()[6]:g}"}


def bn8_parameters():
    bn8 = _bn_layers()[-1]
    return {"answer": bn8.weights, "features": bn8.in_shape[0]}


EXERCISES = [
    Exercise(
        key="bn-params",
        question="{first}–{last_conv} normalise the outputs of the convolutions ({conv} channels), "
                 "{first_linear}–{last} those of the linear layers ({linear} features). How many learnable "
                 "parameters do all BatchNorm layers have together?",
        answer=r"{answer}: two ($\gamma$, $\beta$) per channel or feature of every BatchNorm layer. The "
               r"running mean and variance are buffers, not parameters.",
        values=all_parameters,
    ),
    Exercise(
        key="bn1-values",
        question="Over how many values does BN1 average each channel in a batch of the original recipe "
                 "({batch} images; Conv1's output is {shape} per image)?",
        answer="{answer}: batch size × {hw} positions of Conv1's output.",
        values=bn1_values,
    ),
    Exercise(
        key="worked-dbeta",
        question=r"In the worked example, what is $\partial L/\partial\beta$? Explain it without computing.",
        answer=r"{answer}: $\beta$ is added to every output with coefficient 1, so its gradient is the sum "
               r"of the upstream gradient.",
        values=worked_dbeta,
    ),
    Exercise(
        key="bn8-params",
        question="BN8 normalises the {features} logits. How many parameters does it have, and what happens "
                 "to the bias of FC3 in front of it?",
        answer=r"{answer} ({features} $\gamma$, {features} $\beta$). FC3's bias gets a zero gradient, like "
               r"every bias in front of a BatchNorm; BN8's $\beta$ plays its role.",
        values=bn8_parameters,
    ),
    Exercise(
        question=r"Show that in eval mode $\partial L/\partial x_i = \gamma\,\delta_i / "
                 r"\sqrt{\hat\sigma^2+\epsilon}$: which terms of the derivation disappear when $\mu$ and "
                 r"$\sigma^2$ are constants?",
        answer=r"""
            In eval mode $\mu$ and $\sigma^2$ are the running estimates $\hat\mu$ and $\hat\sigma^2$:
            fixed numbers that do not depend on the batch, so $\partial\mu/\partial x_i =
            \partial\sigma^2/\partial x_i = 0$. Of the three ways $\hat x_j$ depended on $x_i$ only the
            direct one is left, and $\partial\hat x_j/\partial x_i = [i=j]/\sqrt{\hat\sigma^2+\epsilon}$:
            the term $-\frac{1}{m}$ (through the mean) and the term $-\hat x_i\hat x_j/m$ (through the
            variance) disappear. With $g_i = \gamma\,\delta_i$ the sum over $j$ has a single term,
            $\partial L/\partial x_i = \gamma\,\delta_i/\sqrt{\hat\sigma^2+\epsilon}$. Eval-mode BatchNorm
            is a fixed scale and shift per channel, and its gradient is the scale.
            """,
    ),
]
