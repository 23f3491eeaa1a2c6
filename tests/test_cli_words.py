"""The command speaks the command's words: flags and commands in its errors, help on every argument.

The same errors raised through the Python API keep their Python advice (arguments, functions).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import torch
from PIL import Image

import cnnzoo
from cnnzoo.cli import build_parser, main
from cnnzoo.comparison.selection import DataShape, select


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """A two-class RGB ImageFolder of 16x16 noise, four images a class and split."""
    root = tmp_path_factory.mktemp("folder")
    generator = torch.Generator().manual_seed(0)
    for split in ("train", "test"):
        for label in ("a", "b"):
            (root / split / label).mkdir(parents=True)
            for i in range(4):
                pixels = torch.randint(0, 256, (16, 16, 3), generator=generator, dtype=torch.uint8)
                Image.fromarray(pixels.numpy()).save(root / split / label / f"{i}.png")
    return root


def _commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    commands = {"cnnzoo": parser}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, command in action.choices.items():
                commands.update({f"cnnzoo {name}": command})
    return commands


def test_every_argument_of_every_command_has_help():
    missing = [
        f"{command}: {action.dest}"
        for command, parser in _commands(build_parser()).items()
        for action in parser._actions
        if not isinstance(action, argparse._SubParsersAction)
        and (action.help is None or not action.help.strip())
    ]
    assert missing == []


def test_compare_epochs_help_states_fits_default_number():
    from cnnzoo.training.arguments import DEFAULT_EPOCHS

    compare = _commands(build_parser())["cnnzoo compare"].format_help()
    assert f"(default: fit's, {DEFAULT_EPOCHS})" in " ".join(compare.split())


def test_evaluate_is_an_alias_of_eval():
    parser = build_parser()
    eval_args = parser.parse_args(["eval", "m.safetensors", "--data", "fashion-mnist"])
    alias_args = parser.parse_args(["evaluate", "m.safetensors", "--data", "fashion-mnist"])
    assert alias_args.run is eval_args.run and alias_args.checkpoint == Path("m.safetensors")


def test_unknown_model_points_to_cnnzoo_list_at_the_shell_and_list_models_in_python(capsys):
    code, _, err = run(capsys, "info", "resnet19")
    assert code == 2 and "See 'cnnzoo list'" in err and "list_models" not in err
    with pytest.raises(ValueError, match=r"list_models\(\)"):
        cnnzoo.models.info("resnet19")


def test_eval_on_images_of_another_size_names_the_image_size_flag(capsys, tmp_path, folder):
    model = cnnzoo.get_model("lenet5", num_classes=2, in_channels=3)  # made for 28x28
    checkpoint = cnnzoo.save(model, tmp_path / "m.safetensors")
    code, _, err = run(capsys, "evaluate", str(checkpoint), "--data", str(folder))
    assert code == 2 and "--image-size 28" in err
    assert "resize_pixels" not in err and "pretrained_cfg" not in err
    with pytest.raises(ValueError, match=r"resize_pixels.*pretrained_cfg\.replace"):
        cnnzoo.evaluate(model, (torch.zeros(2, 3, 16, 16), torch.zeros(2, dtype=torch.long)))


def test_a_finished_train_run_again_and_a_short_resume_name_the_flags(capsys, tmp_path, folder):
    out = tmp_path / "run"
    options = ["--batch-size", "4", "--val", "0", "--out", str(out), "--device", "cpu"]
    argv = ["train", "mini_resnet", "--data", str(folder), "--image-size", "28", *options]
    code, _, err = run(capsys, *argv, "--epochs", "2")
    assert code == 0, err
    code, _, err = run(capsys, *argv, "--epochs", "2")
    assert code == 2 and "Pass --resume" in err and "another --out" in err
    assert "resume=True" not in err and "checkpoint_dir" not in err
    code, _, err = run(capsys, *argv, "--epochs", "1", "--resume")
    assert code == 2 and "more than --epochs 1. Pass --epochs 2 or more" in err
    assert "epochs=" not in err


def test_no_model_to_compare_is_a_few_lines_naming_the_constraints(capsys, tmp_path, folder):
    code, _, err = run(
        capsys, "compare", "auto", "--max-params", "1000", "--data", str(folder), "--out",
        str(tmp_path / "cmp"),
    )  # fmt: skip
    assert code == 2 and "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) <= 4 and max(len(line) for line in lines) <= 160, err
    assert "cannot take 3x16x16 images" in err and "have more than 1,000 parameters" in err
    assert "--max-params" in err and "max_params" not in err
    with pytest.raises(ValueError, match=r"Raise max_params") as error:
        select("auto", DataShape(3, 16, 16, 2), max_params=1000)
    assert len(str(error.value).splitlines()) <= 4


def test_images_of_several_sizes_name_the_flag_at_the_shell_even_from_a_worker(capsys, tmp_path):
    from cnnzoo._advice import cli_message
    from cnnzoo.data.streamed import decode_chunks

    for split in ("train", "test"):
        for i, side in enumerate((16, 20)):
            (tmp_path / "data" / split / "a").mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (side, side)).save(tmp_path / "data" / split / "a" / f"{i}.png")
    data = tmp_path / "data"
    code, _, err = run(capsys, "train", "lenet5", "--data", str(data), "--out", str(tmp_path / "o"))
    assert (
        code == 2 and "pass --image-size N to resize them all" in err and "image_size=" not in err
    )
    with pytest.raises(ValueError, match=r"pass image_size=\(H, W\)"):
        cnnzoo.data.load_dataset(data, "train")
    paths = sorted(str(p) for p in (data / "train" / "a").iterdir())
    with pytest.raises(ValueError, match=r"image_size=\(H, W\)") as error:  # raised in a worker
        list(decode_chunks(paths, None, "data/train", num_workers=1))
    assert "--image-size N" in (cli_message(error.value) or "")


def test_the_models_left_out_are_counted_by_constraint_with_an_example_each():
    from cnnzoo.comparison.selection import left_out_lines

    left_out = {
        "big_head": "big_head takes exactly 227x227 images.",
        "wide": "input too small",
        "large": "12,000 parameters, more than max_params=1,000",
        "medium": "5,000 parameters, more than max_params=1,000",
    }
    assert left_out_lines(left_out, DataShape(3, 16, 16, 2)) == [
        "2 cannot take 3x16x16 images (e.g. big_head takes exactly 227x227 images)",
        "2 have more than 1,000 parameters (the smallest: medium, 5,000)",
    ]
    assert left_out_lines({"wide": "x" * 300}, DataShape(1, 8, 8, 2))[0].endswith("xxx...)")


def test_a_run_that_learned_nothing_is_warned_in_flags(capsys, tmp_path):
    # Identical images in two classes: whatever the weights, one answer, chance; fit says so.
    for split, count in (("train", 64), ("test", 4)):
        for label in ("a", "b"):
            (tmp_path / "blank" / split / label).mkdir(parents=True)
            for i in range(count):
                Image.new("L", (28, 28), 128).save(tmp_path / "blank" / split / label / f"{i}.png")
    code, out, err = run(
        capsys, "train", "mini_resnet", "--data", str(tmp_path / "blank"), "--epochs", "1",
        "--val", "0", "--device", "cpu", "--out", str(tmp_path / "run"),
    )  # fmt: skip
    assert code == 0, err
    printed = (err + out).splitlines()  # as it happened (stderr), again under the results (stdout)
    warned = [line for line in printed if line.startswith("cnnzoo: warning: fit:")]
    assert len(warned) == 2, err
    for line in warned:
        assert "learned nothing" in line and "a larger --epochs" in line
        assert "pick a --lr with cnnzoo.lr_find(model, train_data) in Python" in line
        assert "History.alerts" not in line and "the run's metrics record it" in line
    metrics = (tmp_path / "run" / "metrics.json").read_text()
    assert "History.alerts records this" in metrics  # the record keeps fit's own words


def test_the_collapse_advice_in_flags():
    from cnnzoo.training.alert_words import cli_wording

    python = (
        "fit: at epoch 2 the training blew up: x. The peak learning rate 0.01 (the recipe) is "
        "likely too high for this model and data: try lr=0.001, or find one with "
        "cnnzoo.lr_find(model, train_data). fit goes on as asked; History.alerts records this."
    )
    worded = cli_wording(python)
    assert "try --lr 0.001, or find one with cnnzoo.lr_find(model, train_data) in Python" in worded
    assert "lr=" not in worded and worded.endswith("the run's metrics record it.")


def test_a_fixed_size_model_on_other_images_names_the_image_size_flag(capsys, tmp_path, folder):
    argv = ["train", "mini_resnet", "--data", str(folder), "--out", str(tmp_path / "run")]
    code, _, err = run(capsys, *argv, "--epochs", "1", "--device", "cpu")
    assert code == 2 and "takes exactly 28x28 images" in err
    assert "Pass --image-size 28 to resize them" in err and "Resize the images" not in err
    with pytest.raises(ValueError, match="Resize the images to 28x28"):
        cnnzoo.get_model("mini_resnet", num_classes=2, in_channels=3)(torch.zeros(1, 3, 16, 16))


def test_a_given_rate_is_named_by_its_flag():
    from cnnzoo.training.alert_words import cli_wording

    assert "(given by --lr)" in cli_wording("The peak learning rate 0.3 (given by lr=) is likely")


def test_labels_beyond_the_model_and_a_bad_split_name_their_flags(capsys, tmp_path, folder):
    # the folder has 2 classes: a 1-class model cannot take label 1; --val 0.999 leaves none
    argv = ["train", "lenet5", "--data", str(folder), "--out", str(tmp_path / "run")]
    argv += ["--image-size", "28"]
    code, _, err = run(capsys, *argv, "--num-classes", "1")
    assert code == 2 and "pass --num-classes 2" in err and "num_classes=" not in err
    code, _, err = run(capsys, *argv, "--val", "0.999")
    assert code == 2 and "--val 0.999 leaves" in err and "val_data=" not in err


def test_train_refuses_an_unknown_model_and_a_bad_rate_before_reading_data(capsys, tmp_path):
    missing = str(tmp_path / "no-such-data")
    code, _, err = run(capsys, "train", "resnet19", "--data", missing, "--out", str(tmp_path))
    assert code == 2 and "unknown model 'resnet19'" in err
    for rate in ("0", "nan", "-1"):
        with pytest.raises(SystemExit):
            main(["train", "lenet5", "--data", missing, "--out", str(tmp_path), "--lr", rate])
        assert "--lr: must be a finite number above 0" in capsys.readouterr().err
