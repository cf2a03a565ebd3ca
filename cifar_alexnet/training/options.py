"""The ``cifar-alexnet train`` options, generated from the fields of :class:`~cifar_alexnet.training.config.TrainConfig`.

Every field with a ``cli`` entry becomes one option; its help names the default (for a
hyperparameter: each recipe's value). Options that are not typed stay out of the parsed
namespace, so :func:`config_from_args` tells what the user asked for from what the recipe
gives.
"""

from __future__ import annotations

import argparse
from dataclasses import fields
from typing import Any

from cifar_alexnet.training.config import HYPER, RUN, SPEED, TrainConfig, field_base_type
from cifar_alexnet.training.recipes import RECIPES, config_for_resume, config_from_recipe

__all__ = ["add_arguments", "config_from_args"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One option per field with a ``cli`` entry; its help names the default (the recipe's, for hyperparameters)."""
    groups = {name: parser.add_argument_group(name) for name in (HYPER, SPEED, RUN)}
    for f in sorted(fields(TrainConfig), key=lambda f: f.name != "recipe"):  # --recipe first
        meta = f.metadata
        if not meta["cli"]:
            continue
        flag = "--" + f.name.replace("_", "-")
        if meta["kind"] == "hyperparameter":
            recipe_values = ", ".join(f"{name}: {getattr(r, f.name)}" for name, r in RECIPES.items())
            help_text = f"{meta['help']} (default: from the recipe -- {recipe_values})"
        else:
            help_text = meta["help"] if "(default:" in meta["help"] else f"{meta['help']} (default: {f.default})"
        # Options not typed stay out of the namespace: config_from_args tells given from default.
        kwargs: dict[str, Any] = dict(dest=f.name, default=argparse.SUPPRESS, help=help_text)
        if meta["cli"] == "flag" and meta["kind"] == "hyperparameter":
            kwargs["action"] = argparse.BooleanOptionalAction
        elif meta["cli"] == "flag":
            kwargs["action"] = "store_true"
        elif meta["cli"] == "no":
            flag, kwargs["action"] = "--no-" + f.name.replace("_", "-"), "store_false"
            kwargs["help"] = f"{meta['help']} (default: {f.name})"
        else:
            kwargs["type"] = field_base_type(f.name)
            if meta["choices"] or f.name == "recipe":
                kwargs["choices"] = list(meta["choices"] or sorted(RECIPES))
            if meta.get("metavar"):
                kwargs["metavar"] = meta["metavar"]
        groups[meta["group"]].add_argument(flag, **kwargs)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The :class:`TrainConfig` a parsed ``train`` command line describes.

    The parser leaves out every option that was not typed (``argparse.SUPPRESS``), so what is
    in ``args`` is exactly what the user asked for: on a new run it overrides the recipe, on
    ``--resume`` it is checked against the stored run.
    """
    given = {f.name: getattr(args, f.name) for f in fields(TrainConfig) if hasattr(args, f.name)}
    resume = given.pop("resume", None)
    if resume is None:
        return config_from_recipe(given.pop("recipe", "original"), **given)
    return config_for_resume(resume, **given)
