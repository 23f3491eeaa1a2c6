"""The ``--help`` of every command: defaults shown, and examples after the options."""

from __future__ import annotations

import argparse

__all__ = ["EXAMPLES", "HelpFormatter", "polish_help"]

# Shown under "examples:" at the end of each command's --help.
EXAMPLES = {
    None: """\
examples:
  cnnzoo list 'resnet*'
  cnnzoo train lenet5 --data fashion-mnist --epochs 5 --out runs/lenet5
  cnnzoo compare lenet5 'mini_*' --data fashion-mnist --epochs 3 --out runs/cmp
  cnnzoo eval runs/lenet5/model.safetensors --data fashion-mnist
  cnnzoo predict runs/lenet5/model.safetensors examples/boot.png""",
    "list": """\
examples:
  cnnzoo list
  cnnzoo list 'vgg*_bn'""",
    "info": """\
examples:
  cnnzoo info resnet18""",
    "summary": """\
examples:
  cnnzoo summary lenet5
  cnnzoo summary resnet18 --small-input --input-size 3 32 32 --num-classes 10""",
    "train": """\
examples:
  cnnzoo train lenet5 --data fashion-mnist --epochs 5 --out runs/lenet5
  cnnzoo train mini_resnet --data fashion-mnist --epochs 6 --seed 0 --out runs/mini_resnet
  cnnzoo train resnet18 --small-input --data cifar10 --augment crop flip --epochs 30 \\
      --ema --grad-clip 1.0 --log-dir runs/c10/tb --out runs/c10
  cnnzoo train resnet18 --weights imagenet --data path/to/folder --image-size 224 \\
      --batch-size 32 --accumulate 4 --out runs/folder""",
    "compare": """\
examples:
  cnnzoo compare lenet5 'mini_*' --data fashion-mnist --epochs 3 --out runs/cmp
  cnnzoo compare auto --max-params 8000000 --data path/to/folder --image-size 32 \\
      --time-budget 60 --out runs/folder-cmp""",
    "eval": """\
examples:
  cnnzoo eval runs/lenet5/model.safetensors --data fashion-mnist""",
    "predict": """\
examples:
  cnnzoo predict runs/lenet5/model.safetensors examples/boot.png examples/trouser.png --top 3""",
}


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows each option's default, and keeps the examples' lines as written.

    Required options and options off by default (None, False) show none: "(default: None)"
    says nothing; their help says what leaving them out means.
    """

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.required or action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


def polish_help(parser: argparse.ArgumentParser, sub: argparse._SubParsersAction) -> None:
    """Give ``parser`` and each of its commands the formatter and their examples."""
    commands: list[tuple[str | None, argparse.ArgumentParser]] = [(None, parser)]
    commands += list(sub.choices.items())
    for name, command in commands:
        command.formatter_class = HelpFormatter
        if command.epilog is None and name in EXAMPLES:
            command.epilog = EXAMPLES[name]
