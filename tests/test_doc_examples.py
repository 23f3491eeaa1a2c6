"""Every ``cnnzoo`` command of the README, the docs and ``--help`` runs, shrunk, so none can rot.

Each document is a session of its own, in a fresh folder, its commands in the order written
(``eval`` reads what the ``train`` above it wrote). The commands run as written but for the size
of the work: Fashion-MNIST is cut to a few dozen of its images (and CIFAR-10, not on this
machine, is a few dozen random ones), ``path/to/folder`` is a small image folder, every run
trains one epoch (or one second) in batches of 8, and ``compare auto`` keeps its smallest model
(the models the documented limit keeps are checked on their own, without training). A command
documented with its error (``$ cnnzoo ...`` then ``cnnzoo: error: ...``) must fail with it.
"""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image

import cnnzoo
from cnnzoo.cli import main
from cnnzoo.cli.help import EXAMPLES
from cnnzoo.comparison.selection import DataShape, select
from cnnzoo.data import datasets

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = ["README.md", *sorted(p.name for p in (ROOT / "docs").glob("*.md"))]
COMMAND = re.compile(
    r"(?:^|&& |^\$ )(?:\.venv/bin/)?(cnnzoo (?:list|info|summary|train|compare|eval|evaluate|"
    r"predict)\b.*)"
)
# Commands that cannot run here, with why.
CANNOT = {
    "--weights imagenet": "downloads torchvision's ImageNet weights",
    "/mnt/full-disk": "needs a full disk",
}
# How much of each split the shrunk datasets hold.
SHRUNK = {"train": 24, "test": 8}
# Outputs of the commands already run, by command: a later document's identical command takes
# a copy of them instead of training again (its eval and predict read them).
RAN: dict[tuple[str, ...], tuple[Path, str | None]] = {}


def commands(text: str) -> list[tuple[str, str]]:
    """The ``cnnzoo`` commands in the code blocks of ``text``, with the line after each."""
    found = []
    lines = text.splitlines()
    in_block = False
    i = 0
    while i < len(lines):
        if lines[i].startswith("```"):
            in_block = not in_block
        elif in_block:
            line = lines[i].strip()
            while line.endswith("\\") and i + 1 < len(lines):
                i += 1
                line = line[:-1].rstrip() + " " + lines[i].strip()
            match = COMMAND.search(line)
            if match and not re.search(r"[\[{]|\b[A-Z]{3,}\b", match.group(1)):  # no synopsis
                after = lines[i + 1].strip() if i + 1 < len(lines) else ""
                found.append((match.group(1).split("  #")[0].strip(), after))
        i += 1
    return found


def sessions() -> dict[str, list[tuple[str, str]]]:
    """The commands of each document; ``--help``'s examples as one more."""
    found = {name: commands((ROOT / ("" if name == "README.md" else "docs") / name).read_text())
             for name in DOCUMENTS}  # fmt: skip
    found["--help"] = commands("\n".join(f"```\n{text}\n```" for text in EXAMPLES.values()))
    return {name: listed for name, listed in found.items() if listed}


def shrink(argv: list[str], folder: Path) -> list[str]:
    """The command with the work cut down (see the module)."""
    out = []
    values = {"--epochs": "1", "--time-budget": "1", "--batch-size": "8"}
    for i, word in enumerate(argv):
        previous = argv[i - 1] if i else ""
        if previous in values:
            out.append(values[previous])
        elif previous == "--max-params":
            out.append("1000000")
        elif word == "path/to/folder":
            out.append(str(folder))
        else:
            out.append(word)
    if out[0] in ("train", "compare"):
        if "--epochs" not in out and "--time-budget" not in out:
            out += ["--epochs", "1"]
        if "--batch-size" not in out:
            out += ["--batch-size", "8"]
        if "--time-budget" in out and "--max-params" not in out:
            pytest.fail(f"a timed compare without --max-params trains every model: {argv}")
    return out


@pytest.fixture(scope="module")
def small_data(tmp_path_factory):
    """Fashion-MNIST cut short, a random CIFAR-10, no MNIST, no network; an image folder."""
    real = datasets._read_from
    cut = {}
    for split in ("train", "test"):
        images, labels = real(datasets.DATASETS["fashion-mnist"], datasets.DEBIAN_FASHION_MNIST,
                              split)  # fmt: skip
        cut[split] = images[: SHRUNK[split]].clone(), labels[: SHRUNK[split]].clone()
    generator = torch.Generator().manual_seed(0)
    cifar = {
        split: (
            torch.randint(0, 256, (n, 3, 32, 32), generator=generator, dtype=torch.uint8),
            torch.arange(n) % 10,
        )
        for split, n in SHRUNK.items()
    }

    def read(spec, place, split):
        return {"fashion-mnist": cut, "cifar10": cifar}.get(spec.name, {}).get(split)

    def offline(*args, **kwargs):
        raise ConnectionError("no network in the tests")

    folder = tmp_path_factory.mktemp("folder")
    for split, n in SHRUNK.items():
        for label in ("cat", "dog"):
            (folder / split / label).mkdir(parents=True)
            for i in range(n // 2):
                pixels = torch.randint(0, 256, (32, 32, 3), generator=generator, dtype=torch.uint8)
                Image.fromarray(pixels.numpy()).save(folder / split / label / f"{i}.png")
    return read, offline, folder


@pytest.mark.parametrize("session", list(sessions()))
def test_every_documented_command_runs(session, small_data, tmp_path, monkeypatch, capsys):
    read, offline, folder = small_data
    monkeypatch.setattr(datasets, "_read_from", read)
    monkeypatch.setattr(datasets, "_download", offline)
    monkeypatch.chdir(tmp_path)
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    cnnzoo.save_pretrained(cnnzoo.get_model("lenet5"), tmp_path / "my-lenet")  # cli.md's folder
    for command, after in sessions()[session]:
        if any(mark in command for mark in CANNOT):
            continue
        argv = shrink(shlex.split(command)[1:], folder)
        written = argv[argv.index("--out") + 1] if "--out" in argv else None
        if tuple(argv) in RAN and not after.startswith("cnnzoo: error:"):
            where, written = RAN[tuple(argv)]
            if written is not None and where != tmp_path and not Path(written).exists():
                shutil.copytree(where / written, tmp_path / written)
            continue
        code = main(argv)
        out, err = capsys.readouterr()
        RAN.setdefault(tuple(argv), (tmp_path, written))
        if after.startswith("cnnzoo: error:"):  # documented with its error
            documented = after.split("...")[0][:60]
            assert code == 2 and err.startswith(documented), (command, err)
            continue
        assert code == 0, (command, err)
        assert "Traceback" not in err
        if argv[0] == "predict" and after.startswith(argv[2]):  # documented with its answer
            assert out.startswith(f"{argv[2]}: "), out


def test_the_documented_compare_auto_limit_keeps_three_models():
    """cli.md: on 32x32 images, auto --max-params 8000000 keeps three models."""
    candidates, _ = select("auto", DataShape(3, 32, 32, 10), max_params=8_000_000)
    assert [c.name for c in candidates] == ["cifar_cnn", "densenet121", "googlenet"]


def test_the_shrinking_keeps_the_commands_and_cuts_the_work(tmp_path):
    listed = [command for found in sessions().values() for command, _ in found]
    assert any(c.startswith("cnnzoo compare auto --max-params 8000000") for c in listed)
    assert any("examples/boot.png" in c for c in listed)
    argv = shrink(shlex.split("compare auto --max-params 8000000 --data path/to/folder "
                              "--time-budget 60 --out runs/x"), tmp_path)  # fmt: skip
    assert argv == ["compare", "auto", "--max-params", "1000000", "--data", str(tmp_path),
                    "--time-budget", "1", "--out", "runs/x", "--batch-size", "8"]  # fmt: skip
