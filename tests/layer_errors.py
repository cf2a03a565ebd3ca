"""Largest relative error of every NumPy reference layer against PyTorch, per dtype.

Runs the comparisons of the layer tests (``tests/test_reference_*.py``: forward output and
every gradient, with a random upstream gradient, NumPy vs ``torch.nn.functional`` +
autograd) over many hypothesis-drawn shapes and hyperparameters, and prints, per layer and
dtype, the largest relative error seen (``max|a - b| / max(max|a|, max|b|)``, see
``tests/tolerances.py``) against torch in the same dtype and against the exact answer
(torch in float64 on the same inputs, or a 50-digit mpmath computation for the loss), next
to torch's own error against that answer. The pass criterion is the tests'
(``tests/strategies.py: check_errors``).

Usage::

    python tests/layer_errors.py              # 300 draws per layer and dtype
    python tests/layer_errors.py --draws 50   # quicker

It lives in ``tests/`` because it is the layer tests' own comparisons run at a larger scale
(pytest does not collect it: its name does not start with ``test_``).

The draws are derandomised (the same every run), CPU only, about two minutes at the default.
Exit status 1 if any draw fails the tests' criterion.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a source checkout

import numpy as np  # noqa: E402
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import test_reference_adam as adam_tests  # noqa: E402
import test_reference_batchnorm as bn_tests  # noqa: E402
import test_reference_conv as conv_tests  # noqa: E402
import test_reference_pool as pool_tests  # noqa: E402
import test_reference_simple_layers as simple_tests  # noqa: E402
from reference.conv import conv2d_backward_naive, conv2d_forward_naive  # noqa: E402
from reference.pool import maxpool2d_backward_naive, maxpool2d_forward_naive  # noqa: E402
from strategies import DTYPES, batchnorm_cases, batchnorm_min_values, conv_cases, layer_tolerance, pool_cases, seeds  # noqa: E402


def comparisons(dtype):
    """(layer name, hypothesis strategy of argument tuples, function(args) -> {quantity: Agreement})."""
    bn = batchnorm_cases(min_values=batchnorm_min_values(dtype))
    return [
        ("conv2d (im2col)", st.tuples(conv_cases()), lambda a: conv_tests.conv_errors(a[0], dtype)),
        (
            "conv2d (loops)",
            st.tuples(conv_cases()),
            lambda a: conv_tests.conv_errors(a[0], dtype, conv2d_forward_naive, conv2d_backward_naive),
        ),
        ("maxpool2d (vectorised)", st.tuples(pool_cases()), lambda a: pool_tests.pool_errors(a[0], dtype)),
        (
            "maxpool2d (loops)",
            st.tuples(pool_cases()),
            lambda a: pool_tests.pool_errors(a[0], dtype, maxpool2d_forward_naive, maxpool2d_backward_naive),
        ),
        ("maxpool2d (ties)", st.tuples(pool_cases()), lambda a: pool_tests.pool_errors(a[0], dtype, ties=True)),
        ("batchnorm train", st.tuples(bn), lambda a: bn_tests.batchnorm_errors(a[0], dtype, training=True)),
        ("batchnorm eval", st.tuples(bn), lambda a: bn_tests.batchnorm_errors(a[0], dtype, training=False)),
        ("relu", st.tuples(simple_tests.activation_shapes, seeds), lambda a: simple_tests.relu_errors(*a, dtype)),
        ("linear", st.tuples(simple_tests.linear_shapes, seeds), lambda a: simple_tests.linear_errors(*a, dtype)),
        (
            "dropout",
            st.tuples(simple_tests.activation_shapes, simple_tests.drop_probabilities, seeds),
            lambda a: simple_tests.dropout_errors(*a, dtype),
        ),
        ("flatten", st.tuples(simple_tests.activation_shapes, seeds), lambda a: simple_tests.flatten_errors(*a, dtype)),
        ("softmax_cross_entropy", st.tuples(simple_tests.loss_shapes, seeds), lambda a: simple_tests.loss_errors(*a, dtype)),
        (
            "softmax_cross_entropy (logits ~1e4)",
            st.tuples(simple_tests.loss_shapes, seeds),
            lambda a: simple_tests.loss_errors(*a, dtype, scale=1e4),
        ),
        (
            "adam",
            st.tuples(seeds, st.integers(1, 8), adam_tests.hyperparameters),
            lambda a: adam_tests.adam_errors(a[0], dtype, a[1], a[2]),
        ),
    ]


def largest_errors(draws: int):
    """{(layer, dtype name): summary dict} over ``draws`` hypothesis draws per layer and dtype."""
    results = {}
    for dtype in DTYPES:
        tol = layer_tolerance(dtype)
        for layer, strategy, errors_of in comparisons(dtype):
            summary = {"vs_torch": 0.0, "at": "", "vs_exact": 0.0, "torch_vs_exact": 0.0, "over_tol": 0, "failed": 0, "draws": 0}

            @settings(
                max_examples=draws,
                database=None,
                deadline=None,
                phases=[Phase.generate],  # no shrinking: nothing is asserted here
                suppress_health_check=list(HealthCheck),
                derandomize=True,
            )
            @given(args=strategy)
            def run(args):
                summary["draws"] += 1
                for quantity, a in errors_of(args).items():
                    if a.vs_torch > summary["vs_torch"]:
                        summary["vs_torch"], summary["at"] = a.vs_torch, quantity
                    summary["vs_exact"] = max(summary["vs_exact"], a.vs_exact)
                    summary["torch_vs_exact"] = max(summary["torch_vs_exact"], a.torch_vs_exact)
                    if a.vs_torch > tol:
                        summary["over_tol"] += 1
                        # the tests' second case: at least as close to the exact answer as torch
                        if a.vs_exact > a.torch_vs_exact:
                            summary["failed"] += 1

            run()
            results[(layer, np.dtype(dtype).name)] = summary
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=300, help="hypothesis draws per layer and dtype (default 300)")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    results = largest_errors(args.draws)
    print(f"Largest relative error of the NumPy reference ({args.draws} draws per layer and dtype)")
    print("  vs torch: against torch in the same dtype; vs exact: against the exact answer for the same inputs")
    print("  (torch float64, or 50-digit mpmath for the loss); torch: torch's own error against that answer;")
    print("  >tol: quantities over the tolerance vs torch; the tests accept those when ours is at least as")
    print("  close to the exact answer as torch's (else they are listed as FAILED below)")
    for dtype in ("float32", "float64"):
        print(f"\n{dtype} (tolerance {layer_tolerance(np.dtype(dtype)):.0e})")
        print(f"  {'layer':38s} {'vs torch':>9s}  {'worst quantity':24s} {'vs exact':>9s} {'torch':>9s} {'>tol':>5s}")
        for (layer, dt), r in results.items():
            if dt != dtype:
                continue
            torch_col = f"{r['torch_vs_exact']:9.2e}"
            print(
                f"  {layer:38s} {r['vs_torch']:9.2e}  {r['at']:24s} {r['vs_exact']:9.2e} {torch_col} {r['over_tol']:5d}"
            )
    failed = [(k, r["failed"]) for k, r in results.items() if r["failed"]]
    if failed:
        print("\nFAILED the tests' criterion:", ", ".join(f"{layer} {dtype} ({n}x)" for (layer, dtype), n in failed))
    print(f"\n({time.perf_counter() - start:.0f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
