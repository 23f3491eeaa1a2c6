"""Image folders streamed from disk: the same answers as in memory, bounded memory, sharding.

Every folder here is built by the test (tens of tiny PNGs, lossless), so a streamed and an
in-memory run see the same pixels, and equal answers follow from equal arithmetic, not from
how training happens to go.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from PIL import Image
from torch import nn

import cnnzoo
from cnnzoo.cli import main
from cnnzoo.data import (
    BUDGET_ENV,
    FolderImageError,
    ImageTensorDataset,
    StreamedImageFolder,
    channel_stats,
    load_dataset,
)
from cnnzoo.data.budget import parse_size
from cnnzoo.training.feed import LoaderBatches, ModelInput, Shard, make_batches, resolve

REPO = Path(__file__).resolve().parents[1]
CPU = torch.device("cpu")
FIT = {"batch_size": 8, "lr": 0.02, "precision": "fp32", "num_workers": 0, "verbose": 0}


def folder(root: Path, train: int = 12, test: int = 4, size: tuple[int, int] = (10, 12)) -> Path:
    """``root/{train,test}/{dark,bright}/<n>.png``: noisy images, one brightness per class."""
    generator = torch.Generator().manual_seed(0)
    for split, count in (("train", train), ("test", test)):
        for shade, name in ((60, "dark"), (170, "bright")):
            where = root / split / name
            where.mkdir(parents=True)
            for i in range(count):
                noise = torch.randint(0, 80, (*size, 3), generator=generator, dtype=torch.uint8)
                Image.fromarray((noise + shade).numpy()).save(where / f"{i:03d}.png")
    return root


def numbered(root: Path, count: int) -> Path:
    """``count`` PNGs whose pixels spell their index (red: index // 256, green: index % 256)."""
    where = root / "train" / "only"
    where.mkdir(parents=True)
    for i in range(count):
        Image.new("RGB", (4, 4), (i // 256, i % 256, 0)).save(where / f"{i:04d}.png")
    return root


def net(channels: int = 3) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(channels, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(16, 2),
    )


# == 1. the same answers ===========================================================================
def test_streamed_and_in_memory_runs_give_equal_predictions(tmp_path):
    root = folder(tmp_path / "data")
    runs = {}
    for in_memory in (True, False):
        train = load_dataset(root, "train", in_memory=in_memory)
        test = load_dataset(root, "test", in_memory=in_memory)
        model = net()
        history = cnnzoo.fit(model, train, val_data=0.25, epochs=2, augment="flip", **FIT)
        history.history.pop("epoch_seconds")
        runs[in_memory] = (train, test, model, history.history, cnnzoo.predict(model, test))
    (memory, memory_test, _, memory_history, memory_logits) = runs[True]
    (streamed, streamed_test, model, streamed_history, streamed_logits) = runs[False]
    assert isinstance(memory, ImageTensorDataset) and isinstance(streamed, StreamedImageFolder)
    assert streamed.classes == memory.classes == ["bright", "dark"]
    assert torch.equal(streamed.labels, memory.labels)
    assert (
        (streamed.mean, streamed.std) == (memory.mean, memory.std) == channel_stats(memory.images)
    )
    assert (streamed_test.mean, streamed_test.std) == (memory.mean, memory.std)
    assert streamed_history == memory_history
    assert torch.equal(streamed_logits, memory_logits)
    # The trained model answers the same for either form of the same test images.
    assert torch.equal(cnnzoo.predict(model, memory_test), streamed_logits)
    metrics = cnnzoo.evaluate(model, streamed_test)
    assert metrics["accuracy"] == cnnzoo.evaluate(model, memory_test)["accuracy"]
    assert model.pretrained_cfg.label_names == ("bright", "dark")


def test_a_streamed_folder_yields_the_items_of_the_folder_in_memory(tmp_path):
    root = folder(tmp_path / "data")
    memory = load_dataset(root, "train", in_memory=True)
    streamed = load_dataset(root, "train", in_memory=False)
    for index in (0, 5, len(memory) - 1):
        assert torch.equal(streamed.pixels(index), memory.images[index])
        image, label = streamed[index]
        expected, expected_label = memory[index]
        assert torch.equal(image, expected) and label == expected_label


def test_resized_folders_stream_at_the_size_asked(tmp_path):
    root = folder(tmp_path / "data", size=(9, 13))
    memory = load_dataset(root, "train", in_memory=True, image_size=8)
    streamed = load_dataset(root, "train", in_memory=False, image_size=8)
    assert streamed.image_size == (8, 8) and memory.images.shape[2:] == (8, 8)
    assert torch.equal(
        torch.stack([streamed.pixels(i) for i in range(len(streamed))]), memory.images
    )


# == 2. auto, the budget, the reason ===============================================================
def test_auto_streams_a_folder_over_the_budget_and_says_why(tmp_path, monkeypatch, caplog):
    root = folder(tmp_path / "data")
    decoded = 24 * 3 * 10 * 12  # bytes
    # Another test's logging set-up may have disabled existing loggers (dictConfig does).
    monkeypatch.setattr(logging.getLogger("cnnzoo.data"), "disabled", False)
    with caplog.at_level(logging.INFO, logger="cnnzoo.data"):
        streamed = load_dataset(root, "train", memory_budget=decoded - 1)
    assert isinstance(streamed, StreamedImageFolder) and not streamed.placement.in_memory
    assert "over the budget" in repr(streamed) and "memory_budget" in repr(streamed)
    assert "streamed from disk" in caplog.text
    assert isinstance(load_dataset(root, "train", memory_budget=decoded), ImageTensorDataset)
    monkeypatch.setenv(BUDGET_ENV, "1kB")
    from_env = load_dataset(root, "train")
    assert isinstance(from_env, StreamedImageFolder) and BUDGET_ENV in from_env.placement.reason
    monkeypatch.setenv(BUDGET_ENV, "1GB")
    in_memory = load_dataset(root, "train")
    assert isinstance(in_memory, ImageTensorDataset) and "within the budget" in repr(in_memory)
    # An explicit choice wins over the budget, either way.
    assert isinstance(load_dataset(root, "train", in_memory=False), StreamedImageFolder)
    monkeypatch.setenv(BUDGET_ENV, "1kB")
    assert isinstance(load_dataset(root, "train", in_memory=True), ImageTensorDataset)


def test_auto_budget_defaults_to_a_share_of_the_free_memory(tmp_path, monkeypatch):
    from cnnzoo.data import budget

    monkeypatch.delenv(BUDGET_ENV, raising=False)
    monkeypatch.setattr(budget, "available_host_memory", lambda: 2 * 24 * 3 * 10 * 12 - 2)
    streamed = load_dataset(folder(tmp_path / "data"), "train")  # needs just over half of it
    assert isinstance(streamed, StreamedImageFolder)
    assert "50% of the" in streamed.placement.reason


@pytest.mark.parametrize(
    ("text", "expected"),
    [("2GB", 2 * 10**9), ("512MiB", 512 * 2**20), ("1.5 g", 1_500_000_000), ("1000", 1000)],
)
def test_budget_sizes(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("bad", ["lots", "-1GB", "2 parsecs", ""])
def test_a_budget_that_is_not_a_size_is_refused(tmp_path, monkeypatch, bad):
    monkeypatch.setenv(BUDGET_ENV, bad or " x ")
    with pytest.raises(ValueError, match=BUDGET_ENV):
        load_dataset(folder(tmp_path / "data", train=1, test=1), "train")


def test_in_memory_takes_true_false_or_auto(tmp_path):
    with pytest.raises(ValueError, match="in_memory must be True, False or 'auto'"):
        load_dataset(folder(tmp_path / "data", train=1, test=1), "train", in_memory="yes")
    with pytest.raises(ValueError, match="streams image folders only"):
        load_dataset("fashion-mnist", in_memory=False, download=False)


# == 3. hostile input, streamed ====================================================================
@pytest.mark.parametrize("split", ["train", "test"])
@pytest.mark.parametrize("damage", ["garbage", "truncated", "bomb", "fifo"])
def test_unreadable_images_are_named_when_a_streamed_folder_loads(
    tmp_path, monkeypatch, split, damage
):
    root = folder(tmp_path / "data", train=3, test=2)
    bad = root / split / "dark" / "bad.png"
    if damage == "garbage":
        bad.write_bytes(b"not an image at all")
    elif damage == "truncated":
        Image.new("RGB", (12, 10), (1, 2, 3)).save(tmp_path / "whole.jpg")
        bad = bad.with_suffix(".jpg")
        bad.write_bytes((tmp_path / "whole.jpg").read_bytes()[:300])
    elif damage == "bomb":  # a small limit makes any image a "bomb"
        bad = root / split / "dark" / "000.png"
        monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 50)
    else:
        os.mkfifo(bad)
    with pytest.raises(ValueError, match=rf"{bad.name}.*(remove|MAX_IMAGE_PIXELS)"):
        load_dataset(root, split, in_memory=False)


def test_images_of_different_sizes_are_refused_with_the_fix(tmp_path):
    root = folder(tmp_path / "data", train=3, test=1)
    Image.new("RGB", (5, 5)).save(root / "train" / "dark" / "odd.png")
    with pytest.raises(ValueError, match=r"odd\.png 5x5.*image_size"):
        load_dataset(root, "train", in_memory=False)
    assert len(load_dataset(root, "train", in_memory=False, image_size=6)) == 7


def test_a_file_broken_after_loading_is_named_from_a_worker_without_a_traceback(tmp_path):
    root = folder(tmp_path / "data", train=6, test=1)
    train = load_dataset(root, "train", in_memory=False)
    broken = Path(train.samples[3])
    broken.write_bytes(b"overwritten")
    with pytest.raises(FolderImageError) as caught:
        cnnzoo.fit(net(), train, epochs=1, **{**FIT, "num_workers": 1})
    message = str(caught.value)
    assert broken.name in message and "remove or replace it" in message
    assert "Traceback" not in message and "worker" not in message


def test_cli_trains_and_evaluates_a_streamed_folder(tmp_path, capsys):
    root = folder(tmp_path / "data", size=(28, 28))
    out = tmp_path / "run"
    common = ["--in-memory", "no"]
    code = main(["train", "lenet5", "--data", str(root), "--epochs", "1", "--workers", "0",
                 "--out", str(out), *common])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "train images streamed from disk (in_memory=False)" in captured.out
    assert (out / "model.safetensors").is_file() and "test accuracy" in captured.out
    code = main(["eval", str(out / "model.safetensors"), "--data", str(root), *common])
    evaluated = capsys.readouterr().out
    assert code == 0 and "test images streamed from disk" in evaluated
    accuracy = json.loads((out / "metrics.json").read_text())["accuracy"]
    assert f"test accuracy: {accuracy:.4f}" in evaluated


def test_cli_compare_streams_a_folder_with_the_same_leaderboard_as_in_memory(tmp_path, capsys):
    root = folder(tmp_path / "data", size=(28, 28))
    boards, said = {}, {}
    for choice in ("no", "yes"):
        out = tmp_path / f"cmp-{choice}"
        code = main(["compare", "lenet5", "--data", str(root), "--epochs", "1", "--in-memory",
                     choice, "--out", str(out)])  # fmt: skip
        captured = capsys.readouterr()
        assert code == 0, captured.err
        boards[choice], said[choice] = json.loads((out / "leaderboard.json").read_text()), captured
    assert "train images streamed from disk (in_memory=False)" in said["no"].out
    assert "train images in memory (in_memory=True)" in said["yes"].out
    (row_streamed,), (row_in_memory,) = (boards[c]["rows"] for c in ("no", "yes"))
    for key in ("accuracy", "macro_f1", "best_val_accuracy", "params"):
        assert row_streamed[key] == pytest.approx(row_in_memory[key], abs=1e-6), key


def test_compare_notices_a_streamed_image_changed_between_two_runs(tmp_path):
    root = folder(tmp_path / "data", size=(28, 28))
    out = tmp_path / "cmp"

    def compare_streamed():
        train = load_dataset(root, "train", in_memory=False)
        test = load_dataset(root, "test", in_memory=False)
        options = {"epochs": 1, "device": "cpu", "precision": "fp32", "verbose": 0}
        return cnnzoo.compare(["lenet5"], train, test, out=out, **options)

    compare_streamed()
    compare_streamed()  # the same files: the finished row is kept
    changed = root / "train" / "dark" / "000.png"
    Image.new("RGB", (28, 28), (255, 255, 255)).save(changed)
    os.utime(changed, ns=(1, 1))  # a time of its own, whatever the clock's resolution
    with pytest.raises(ValueError, match="fingerprint"):
        compare_streamed()


def test_cli_names_a_broken_image_of_a_streamed_folder(tmp_path, capsys):
    root = folder(tmp_path / "data", train=3, test=2)
    (root / "test" / "dark" / "bad.png").write_bytes(b"garbage")
    code = main(["train", "lenet5", "--data", str(root), "--in-memory", "no",
                 "--out", str(tmp_path / "run")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "bad.png" in err and "Traceback" not in err


# == 4. bounded memory =============================================================================
MEMORY_PROBE = textwrap.dedent(
    """
    import json, sys, warnings
    from pathlib import Path
    import torch
    from torch import nn
    import cnnzoo
    from cnnzoo.data import load_dataset, streamed as streaming

    warnings.simplefilter("ignore")  # the model has no normalisation of its own: no matter here
    # Decode in this process, so both folders take the same path (the larger would use
    # workers); the per-image code is the same.
    streaming._PARALLEL_FROM = 10**9

    def rss(key):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024

    def peak_growth(run):  # the peak (VmHWM) is reset to the current size (VmRSS) first
        Path("/proc/self/clear_refs").write_text("5")
        base = rss("VmRSS")
        run()
        return rss("VmHWM") - base

    model = nn.Sequential(nn.Conv2d(3, 2, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())

    def stream(root):
        data = load_dataset(root, "train", in_memory=False)
        cnnzoo.predict(model, data, batch_size=16, num_workers=0, precision="fp32")

    small, large = sys.argv[1], sys.argv[2]
    for _ in range(2):  # one-off costs first: lazy imports, allocator pools
        stream(large)
    grown = {
        "streamed_1x": peak_growth(lambda: stream(small)),
        "streamed_4x": peak_growth(lambda: stream(large)),
        "in_memory_1x": peak_growth(lambda: load_dataset(small, "train", in_memory=True)),
        "in_memory_4x": peak_growth(lambda: load_dataset(large, "train", in_memory=True)),
    }
    print(json.dumps(grown))
    """
)


def _noise_folder(root: Path, count: int, side: int) -> Path:
    where = root / "train" / "only"
    where.mkdir(parents=True)
    generator = torch.Generator().manual_seed(0)
    for i in range(count):  # noise, stored uncompressed: large decoded, quick to write and read
        noise = torch.randint(0, 256, (side, side, 3), generator=generator, dtype=torch.uint8)
        Image.fromarray(noise.numpy()).save(where / f"{i:04d}.png", compress_level=0)
    return root


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc")
def test_a_streamed_folder_4x_larger_costs_no_more_memory(tmp_path):
    count, side = 150, 64
    small = _noise_folder(tmp_path / "small", count, side)
    large = _noise_folder(tmp_path / "large", 4 * count, side)
    script = tmp_path / "probe.py"
    script.write_text(MEMORY_PROBE)
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    # Fixed malloc thresholds: glibc's adaptive ones make a process's peak wander by tens of MB
    # from run to run; fixed, the resident size follows the memory in use.
    env |= {"MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "0"}
    done = subprocess.run(
        [sys.executable, str(script), str(small), str(large)],
        env=env, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    grown = json.loads(done.stdout.strip().splitlines()[-1])
    more = 3 * count * 3 * side * side  # the larger folder's extra decoded bytes: 11 MB
    # The measurement sees images held in memory...
    assert grown["in_memory_4x"] - grown["in_memory_1x"] >= 0.9 * more
    # ...and a streamed folder 4x larger costs next to nothing more than the smaller one.
    assert grown["streamed_4x"] - grown["streamed_1x"] < 0.1 * more


# == 5. sharding ===================================================================================
def _indices(batches, epoch: int) -> list[int]:
    seen = []
    for x, _ in batches.epoch(epoch):
        pixels = (x[:, :2, 0, 0] * 255).round().long()
        seen += (pixels[:, 0] * 256 + pixels[:, 1]).tolist()
    return seen


@pytest.mark.parametrize("train", [True, False], ids=["train", "evaluation"])
def test_shards_of_a_streamed_folder_cover_every_image_once_per_epoch(tmp_path, train):
    count = 41
    data = load_dataset(numbered(tmp_path / "data", count), "train", in_memory=False)
    source = resolve(data)
    rule = ModelInput(source.facts, None, "data")  # pixels / 255, to read the indices back
    for epoch in (0, 1):
        seen = []
        for rank in (0, 1):
            batches = make_batches(
                source, device=CPU, batch_size=7, train=train, seed=3, rule=rule,
                shard=Shard(rank, 2), num_workers=0,
            )  # fmt: skip
            assert isinstance(batches, LoaderBatches)
            seen.append(_indices(batches, epoch))
        assert sorted(set(seen[0] + seen[1])) == list(range(count))
        if train:  # DistributedSampler's padding: equal shares, one image twice
            assert len(seen[0]) == len(seen[1]) == 21
        else:
            assert sorted(seen[0] + seen[1]) == list(range(count))


DDP_WORKER = textwrap.dedent(
    """
    import json, os, sys
    import torch
    from torch import nn
    import cnnzoo
    from cnnzoo.data import load_dataset

    root, out = sys.argv[1], sys.argv[2]
    rank = int(os.environ["RANK"])
    train = load_dataset(root, "train", in_memory=False)
    seen = []
    read = train.pixels
    train.pixels = lambda index: (seen.append(index), read(index))[1]

    class Epochs:
        def on_epoch_begin(self, epoch, logs):
            seen.append(-1)  # an epoch starts

    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
        nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(16, 2),
    )
    cnnzoo.fit(model, train, epochs=2, batch_size=7, lr=0.02, precision="fp32",
               num_workers=0, device="cpu", verbose=0, callbacks=[Epochs()])
    torch.save(model.state_dict(), os.path.join(out, f"weights{rank}.pt"))
    with open(os.path.join(out, f"seen{rank}.json"), "w") as f:
        json.dump(seen, f)
    """
)


@pytest.mark.slow
def test_two_process_ddp_run_on_a_streamed_folder_reads_each_image_once_per_epoch(tmp_path):
    count = 41
    root = numbered(tmp_path / "data", count)
    (root / "train" / "other").mkdir()
    for i in range(count, count + 1):  # two classes, 42 images: 21 per rank, 3 batches of 7
        Image.new("RGB", (4, 4), (i // 256, i % 256, 0)).save(root / "train" / "other" / "x.png")
    script = tmp_path / "worker.py"
    script.write_text(DDP_WORKER)
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    env["OMP_NUM_THREADS"] = "1"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               str(script), str(root), str(tmp_path)]  # fmt: skip
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    weights = [torch.load(tmp_path / f"weights{r}.pt", weights_only=True) for r in (0, 1)]
    for key in weights[0]:
        assert torch.equal(weights[0][key], weights[1][key]), key
    epochs = []
    for rank in (0, 1):
        seen = json.loads((tmp_path / f"seen{rank}.json").read_text())
        # Reads before the first epoch are fit's probe of the first image.
        per_epoch = [part for part in _split_at(seen, -1)[1:]]
        assert len(per_epoch) == 2
        epochs.append(per_epoch)
    for epoch in (0, 1):
        # Each rank trains on its 21 images, then fit re-reads its epoch's first batches (all 3
        # here) to re-measure the BatchNorm statistics.
        trained = [epochs[rank][epoch][:21] for rank in (0, 1)]
        assert sorted(trained[0] + trained[1]) == list(range(count + 1))  # every image once
        for rank in (0, 1):
            after = epochs[rank][epoch][21:]
            assert after[:21] == trained[rank]
            # At the run's end, rank 0 (which watches for a run that learned nothing) may score
            # the final weights on its first training batches, in the first epoch's order.
            may_check = rank == 0 and epoch == 1
            assert after[21:] in ([], epochs[0][0][:21] if may_check else [])
    assert epochs[0][0] != epochs[0][1]  # each epoch its own order


def _split_at(items: list[int], marker: int) -> list[list[int]]:
    parts: list[list[int]] = [[]]
    for item in items:
        if item == marker:
            parts.append([])
        else:
            parts[-1].append(item)
    return parts
