"""The README's two commands stay true: the test command is exactly what CI runs, and every
``cifar-alexnet`` command in the README parses with the real command line (no stale flags)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from cifar_alexnet.cli import COMMANDS, build_parser

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def _first_bash_block(text: str) -> list[str]:
    match = re.search(r"```bash\n(.*?)```", text, flags=re.S)
    assert match, "README.md has no ```bash block with the set-up commands"
    return [line.strip() for line in match.group(1).splitlines() if line.strip() and not line.startswith("#")]


def _cifar_alexnet_invocations(text: str) -> list[list[str]]:
    """Every ``cifar-alexnet ...`` command in the README (in code blocks and inline code)."""
    found = []
    for snippet in re.findall(r"`([^`\n]*cifar-alexnet [^`\n]*)`", text) + _first_bash_block(text):
        for part in snippet.split("&&"):
            words = shlex.split(part)
            for i, word in enumerate(words):
                if word.endswith("cifar-alexnet") and i + 1 < len(words):
                    found.append(words[i + 1:])
    return found


def test_readme_test_command_is_the_ci_command():
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()
                if "pytest" in line and not line.lstrip().startswith("#")]
    assert len(ci_lines) == 1, ci_lines
    readme_test_lines = [line for line in _first_bash_block(README) if "pytest" in line]
    assert readme_test_lines == ci_lines


def test_readme_has_a_train_command():
    trains = [args for args in _cifar_alexnet_invocations(README) if args[0] == "train"]
    assert trains, "README.md shows no `cifar-alexnet train` command"


@pytest.mark.parametrize("args", _cifar_alexnet_invocations(README), ids=lambda a: " ".join(a))
def test_readme_cli_commands_parse(args):
    assert args[0] in COMMANDS, f"README uses an unknown command {args[0]!r}"
    parser = build_parser(args[0])
    parser.parse_args(args)  # exits (SystemExit) on an unknown flag or a bad value
    sub = parser._subparsers._group_actions[0].choices[args[0]]
    spelled_out = {flag for action in sub._actions for flag in action.option_strings}
    typed = [word.split("=")[0] for word in args[1:] if word.startswith("--")]
    # argparse accepts an unambiguous prefix (--epoch for --epochs); the README spells every flag out
    assert all(flag in spelled_out for flag in typed), sorted(set(typed) - spelled_out)


def test_the_parser_rejects_unknown_flags():
    """The check above can fail: a flag that does not exist makes argparse exit."""
    with pytest.raises(SystemExit):
        build_parser("train").parse_args(["train", "--no-such-flag"])
