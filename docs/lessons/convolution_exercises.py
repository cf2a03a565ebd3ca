"""Exercises of the convolution lesson: each question, its answer, and the code that computes them.

Rendered at the end of convolution.md by ``exercise_kit.render("convolution")``; the values
marked ``{answer}`` are checked against PyTorch by ``tests/docs/test_docs.py``.
"""

from exercise_kit import Exercise
from site_kit import fmt


def _conv(name):
    from reference.architecture import layer
    from reference.counts import count_layers

    counts = {c.layer.name: c for c in count_layers()}[name]
    return layer(name), counts


def conv1_without_padding():
    from reference.architecture import INPUT_SHAPE
    from reference.conv import conv2d_output_size

    L, _ = _conv("Conv1")
    return {"answer": conv2d_output_size(INPUT_SHAPE[1], L.kernel, L.stride, 0), "H": INPUT_SHAPE[1],
            "k": L.kernel, "s": L.stride}


def conv3_macs():
    L, c = _conv("Conv3")
    return {"answer": c.macs, "cin": c.in_shape[0], "hw": f"{c.in_shape[1]}×{c.in_shape[2]}", "F": c.out_shape[0],
            "k": L.kernel, "p": L.padding, "out": "×".join(map(str, c.out_shape))}


def conv2_parameters():
    L, c = _conv("Conv2")
    return {"answer": c.weights, "cin": c.in_shape[0], "F": c.out_shape[0], "k": L.kernel}


def conv2_im2col(batch: int = 512):
    L, c = _conv("Conv2")
    rows, columns = c.in_shape[0] * L.kernel ** 2, batch * c.out_shape[1] * c.out_shape[2]
    return {"answer": f"{rows} × {fmt(columns)}", "batch": batch, "cin": c.in_shape[0], "k": L.kernel,
            "out": f"{c.out_shape[1]}×{c.out_shape[2]}"}


def worked_with_stride_1():
    import lesson_conv

    out = lesson_conv.worked(lesson_conv.PADDING, 1)[0]
    return {"answer": out.shape[0], "p": lesson_conv.PADDING}


EXERCISES = [
    Exercise(
        key="conv1-size-p0",
        question="What is the output size of Conv1 with padding 0 instead of 2?",
        answer="{answer} pixels per side: ⌊({H} + 0 − {k}) / {s}⌋ + 1.",
        values=conv1_without_padding,
    ),
    Exercise(
        key="conv3-macs",
        question="Conv3 reads a {cin}×{hw} input and has {F} filters of {k}×{k}, with padding {p} and stride 1, "
                 "so its output is {out}. How many multiply-accumulates does it need for one image?",
        answer="{answer}: one per output value and per weight of its filter, "
               "(output channels · H_out · W_out) · (input channels · {k} · {k}). "
               "See [Conv3](../network/conv3.md).",
        values=conv3_macs,
    ),
    Exercise(
        key="conv2-params",
        question="Conv2 has {F} filters of {k}×{k} over its {cin} input channels. How many learnable "
                 "parameters does it have?",
        answer="{answer}: F·C·k² weights plus F biases.",
        values=conv2_parameters,
    ),
    Exercise(
        key="conv2-im2col",
        question="What shape does Conv2's im2col matrix `cols` have for a batch of {batch} images? "
                 "(Conv2 reads {cin} channels with {k}×{k} filters and makes {out} maps.)",
        answer="{answer}: C·k² rows, one column per image and output position.",
        values=conv2_im2col,
    ),
    Exercise(
        key="worked-stride1",
        question="In the worked example, how many outputs per side are there with stride 1 (padding still "
                 "{p})? Which input pixels now feed more than one output?",
        answer="{answer}: ⌊(4 + 2 − 2) / 1⌋ + 1. Windows now overlap by one row and column, so every image "
               "pixel feeds four outputs and its gradient is a sum of four terms.",
        values=worked_with_stride_1,
    ),
    Exercise(
        question="In the three-channel example, change the filter's blue slice to all zeros. Which of the "
                 "three contributions changes, and what is the filter's new map?",
        answer="Only the blue contribution, which becomes all zeros; the map is the sum of the red and the "
               "green contributions alone. Each channel adds its own term to the sum over $c$ and nothing "
               "else, which is why a filter can learn to ignore a channel.",
    ),
    Exercise(
        question=r"Write the weight gradient of one filter for one image with four nested loops over "
                 r"$(i, j, u, v)$ and one over the channels, and check it against "
                 r"`reference.conv.conv2d_backward` on random input.",
        answer="The loop version above is one answer: its `dw[f, c, u, v] += g * x_pad[n, c, row, col]` is "
               "that sum, one term at a time. `tests/docs/test_docs_teaching_functions.py` makes the same "
               "comparison for random sizes, strides and paddings.",
    ),
]
