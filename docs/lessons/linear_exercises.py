"""Exercises of the lesson on linear layers and flatten: questions, answers, the code that computes them.

Rendered at the end of linear.md by ``exercise_kit.render("linear")``; the values marked
``{answer}`` are checked against PyTorch by ``tests/docs/test_docs.py``.
"""

from exercise_kit import Exercise


def _counts():
    from reference.counts import count_layers

    return {c.layer.name: c for c in count_layers()}


def flatten_length():
    c = _counts()
    return {"answer": c["Flatten"].out_shape[0], "shape": "×".join(map(str, c["Pool3"].out_shape))}


def fc1_parameters():
    c = _counts()["FC1"]
    return {"answer": c.weights, "inputs": c.in_shape[0], "outputs": c.out_shape[0]}


def linear_share():
    c = _counts()
    total = sum(x.weights for x in c.values())
    linear = sum(x.weights for x in c.values() if x.layer.kind == "linear")
    return {"answer": f"{100 * linear / total:.1f} %"}


EXERCISES = [
    Exercise(
        key="flatten-length",
        question="How many values does flatten hand to FC1 per image?",
        answer="{answer}: Pool3's output, {shape}, as one vector.",
        values=flatten_length,
    ),
    Exercise(
        key="fc1-params",
        question="FC1 maps the {inputs} flattened values to {outputs} outputs. How many parameters does it have?",
        answer="{answer}: inputs × outputs weights plus one bias per output.",
        values=fc1_parameters,
    ),
    Exercise(
        key="linear-share",
        question="What share of all learnable parameters sits in the three linear layers? (The figure has "
                 "every layer's count.)",
        answer="{answer}, the orange bars of the figure.",
        values=linear_share,
    ),
    Exercise(
        question=r"Derive $\partial L/\partial x$ for $y = x W^{\top} + b$ by checking shapes alone: $\delta$ "
                 r"is $(N, D_{out})$, $W$ is $(D_{out}, D_{in})$, and the answer must be $(N, D_{in})$.",
        answer=r"""
            $y$ is linear in $x$, so $\partial L/\partial x$ is a product of $\delta$ and $W$, and the only
            one with shape $(N, D_{in})$ is $\delta\,W$: $(N, D_{out})\cdot(D_{out}, D_{in})$. The chain
            rule agrees index by index: $y_{nk} = \sum_j x_{nj}W_{kj} + b_k$ gives
            $\partial L/\partial x_{nj} = \sum_k \delta_{nk}W_{kj} = (\delta W)_{nj}$. The same shape game
            gives $\partial L/\partial W = \delta^{\top}x$, $(D_{out}, N)\cdot(N, D_{in})$, and
            $\partial L/\partial b = \sum_n \delta_n$, the only way to turn $(N, D_{out})$ into
            $(D_{out},)$ that every sample contributes to alike.
            """,
    ),
]
