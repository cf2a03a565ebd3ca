"""The training log printed in the original write-up, transcribed (not computed).

Source: ``shared/original/000_e87e2e1067e7d35c.txt``, section "학습 시키기", the output of
the training cell: every fifth epoch of 100, "Acc(train, test)". The "train" accuracy was
measured in eval mode on *augmented* training images (see the Errata page). The run used
official CIFAR-10, batch 512, Adam 1e-3, one GPU, "about an hour" for 100 epochs.
"""

from __future__ import annotations

import re

#: The log lines exactly as printed.
ORIGINAL_LOG = """\
	Epoch:   5/100, Acc(train, test) : (78.28%, 78.76%)
	Epoch:  10/100, Acc(train, test) : (80.62%, 80.63%)
	Epoch:  15/100, Acc(train, test) : (88.65%, 86.13%)
	Epoch:  20/100, Acc(train, test) : (88.85%, 85.92%)
	Epoch:  25/100, Acc(train, test) : (93.24%, 88.16%)
	Epoch:  30/100, Acc(train, test) : (93.05%, 87.51%)
	Epoch:  35/100, Acc(train, test) : (95.17%, 89.18%)
	Epoch:  40/100, Acc(train, test) : (96.55%, 89.81%)
	Epoch:  45/100, Acc(train, test) : (96.92%, 89.44%)
	Epoch:  50/100, Acc(train, test) : (97.17%, 89.36%)
	Epoch:  55/100, Acc(train, test) : (97.56%, 89.59%)
	Epoch:  60/100, Acc(train, test) : (98.10%, 90.34%)
	Epoch:  65/100, Acc(train, test) : (98.19%, 90.27%)
	Epoch:  70/100, Acc(train, test) : (98.56%, 90.00%)
	Epoch:  75/100, Acc(train, test) : (98.47%, 90.00%)
	Epoch:  80/100, Acc(train, test) : (98.47%, 90.27%)
	Epoch:  85/100, Acc(train, test) : (98.63%, 89.87%)
	Epoch:  90/100, Acc(train, test) : (98.87%, 90.27%)
	Epoch:  95/100, Acc(train, test) : (98.45%, 90.01%)
	Epoch: 100/100, Acc(train, test) : (98.44%, 89.90%)
"""

_LINE = re.compile(r"Epoch:\s*(\d+)/(\d+), Acc\(train, test\) : \(([\d.]+)%, ([\d.]+)%\)")


def parse_log(text: str = ORIGINAL_LOG) -> list[dict]:
    """``[{"epoch", "eval_train_acc", "test_acc"}, ...]`` with accuracies in percent."""
    rows = []
    for line in text.splitlines():
        match = _LINE.search(line)
        if not match:
            raise ValueError(f"original log: cannot read line {line!r}")
        epoch, _, train, test = match.groups()
        rows.append({"epoch": int(epoch), "eval_train_acc": float(train), "test_acc": float(test)})
    return rows


def best(rows=None) -> dict:
    """The row with the best test accuracy (the first one if several tie)."""
    rows = parse_log() if rows is None else rows
    return max(rows, key=lambda r: (r["test_acc"], -r["epoch"]))
