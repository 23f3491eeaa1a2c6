"""cnnzoo.data (dataset loading, batch augmentation) and the trainer's feed (splits, batches)."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from cnnzoo.data import (
    DATASETS,
    ImageTensorDataset,
    hflip,
    load_dataset,
    make_augment,
    random_crop,
    read_idx,
)
from cnnzoo.training.feed import (
    DataFacts,
    DeviceBatches,
    InMemory,
    LoaderBatches,
    Shard,
    Streamed,
    epoch_order,
    resolve,
    split,
)

FASHION = Path("/usr/share/datasets/fashion-mnist")
CPU = torch.device("cpu")


def write_idx(path: Path, array: torch.Tensor, compress: bool) -> None:
    header = bytes([0, 0, 0x08, array.dim()])
    header += b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    data = header + array.to(torch.uint8).numpy().tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)


def fake_mnist(
    folder: Path, compress: bool = True, n: int = 12
) -> tuple[torch.Tensor, torch.Tensor]:
    folder.mkdir(parents=True, exist_ok=True)
    images = torch.randint(0, 256, (n, 28, 28), generator=torch.Generator().manual_seed(0))
    labels = torch.arange(n) % 10
    for prefix in ("train", "t10k"):
        write_idx(folder / f"{prefix}-images-idx3-ubyte", images, compress)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", labels, compress)
    return images.to(torch.uint8), labels


@pytest.fixture
def no_default_places(tmp_path, monkeypatch):
    """Point ~ and $CNNZOO_DATA somewhere empty so only the test's files are found."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CNNZOO_DATA", raising=False)


# -- reading files ---------------------------------------------------------------------------
@pytest.mark.parametrize("compress", [True, False])
def test_read_idx_round_trips(tmp_path, compress):
    array = torch.randint(0, 256, (3, 4, 5), dtype=torch.uint8)
    write_idx(tmp_path / "x-idx3-ubyte", array, compress)
    name = "x-idx3-ubyte.gz" if compress else "x-idx3-ubyte"
    assert torch.equal(read_idx(tmp_path / name), array)


def test_read_idx_refuses_truncated_files(tmp_path):
    write_idx(tmp_path / "x", torch.zeros(4, 4, dtype=torch.uint8), compress=False)
    (tmp_path / "x").write_bytes((tmp_path / "x").read_bytes()[:-3])
    with pytest.raises(ValueError, match="truncated"):
        read_idx(tmp_path / "x")


@pytest.mark.parametrize("layout", ["flat", "torchvision"])
def test_load_dataset_finds_both_layouts_in_root(tmp_path, no_default_places, layout):
    folder = tmp_path / "data" if layout == "flat" else tmp_path / "data" / "MNIST" / "raw"
    images, labels = fake_mnist(folder, compress=layout == "flat")
    dataset = load_dataset("mnist", "test", root=tmp_path / "data", download=False)
    assert isinstance(dataset, ImageTensorDataset)
    assert dataset.images.shape == (12, 1, 28, 28) and dataset.images.dtype == torch.uint8
    assert torch.equal(dataset.images[:, 0], images) and torch.equal(dataset.labels, labels)
    assert dataset.classes == list(DATASETS["mnist"].classes)
    assert dataset.mean == (0.1307,) and dataset.std == (0.3081,)


def test_a_named_dataset_at_another_image_size_is_resized_as_predict_resizes_a_file(
    tmp_path, no_default_places, monkeypatch
):
    from cnnzoo.data import images as image_module
    from cnnzoo.data.images import resize_pixels

    fake_mnist(tmp_path / "data", n=5)
    native = load_dataset("mnist", "test", root=tmp_path / "data", download=False)
    monkeypatch.setattr(image_module, "RESIZE_CHUNK", 2)  # chunks of unequal size
    resized = load_dataset("mnist", "test", root=tmp_path / "data", download=False, image_size=32)
    assert resized.images.shape == (5, 1, 32, 32) and resized.images.dtype == torch.uint8
    for image, big in zip(native.images, resized.images, strict=True):
        assert torch.equal(big, resize_pixels(image, (32, 32)))
    assert (resized.mean, resized.std, resized.classes) == (native.mean, native.std, native.classes)
    same = load_dataset("mnist", "test", root=tmp_path / "data", download=False, image_size=28)
    assert torch.equal(same.images, native.images)
    # a size that cannot fit is refused before anything is allocated, naming the size and fix
    monkeypatch.setattr("cnnzoo.data.budget.memory_within_limits", lambda: (10_000, "host free"))
    with pytest.raises(ValueError, match=r"mnist at 32x32 takes 5.1 kB.*pass a smaller image_size"):
        load_dataset("mnist", "test", root=tmp_path / "data", download=False, image_size=32)


def test_load_dataset_reads_cnnzoo_data_env(tmp_path, no_default_places, monkeypatch):
    fake_mnist(tmp_path / "env")
    monkeypatch.setenv("CNNZOO_DATA", str(tmp_path / "env"))
    assert len(load_dataset("mnist", download=False)) == 12


def test_missing_dataset_names_every_place_and_the_fix(tmp_path, no_default_places, monkeypatch):
    monkeypatch.setenv("CNNZOO_DATA", str(tmp_path / "env"))
    with pytest.raises(FileNotFoundError) as raised:
        load_dataset("mnist", root=tmp_path / "root", download=False)
    message = str(raised.value)
    for place in (tmp_path / "root", tmp_path / "env", tmp_path / "home" / ".cache" / "cnnzoo"):
        assert str(place) in message
    assert "CNNZOO_DATA" in message and "download" in message.lower()


def test_unknown_dataset_and_split_are_refused():
    with pytest.raises(ValueError, match="unknown dataset"):
        load_dataset("imagenet-22k")
    with pytest.raises(ValueError, match="split"):
        load_dataset("mnist", split="val")


def test_image_folder(tmp_path):
    from PIL import Image

    for split_name in ("train", "test"):
        for index, name in enumerate(("cat", "dog")):
            folder = tmp_path / split_name / name
            folder.mkdir(parents=True)
            for i in range(3):
                Image.new("RGB", (10, 8), (80 * index + i, 20, 200)).save(folder / f"{i}.png")
    train = load_dataset(tmp_path, "train")
    test = load_dataset(str(tmp_path), "test")
    assert train.classes == ["cat", "dog"] and train.images.shape == (6, 3, 8, 10)
    assert torch.equal(train.labels, torch.tensor([0, 0, 0, 1, 1, 1]))
    assert test.mean == train.mean and test.std == train.std  # test is normalised like train
    assert train.mean[2] == pytest.approx(200 / 255, abs=1e-4)
    Image.new("RGB", (5, 5)).save(tmp_path / "train" / "cat" / "odd.png")
    with pytest.raises(ValueError, match="image_size"):
        load_dataset(tmp_path, "train")
    assert load_dataset(tmp_path, "train", image_size=6).images.shape == (7, 3, 6, 6)


def test_image_tensor_dataset_items_match_the_device_batches():
    images = torch.randint(0, 256, (10, 3, 4, 4), dtype=torch.uint8)
    dataset = ImageTensorDataset(
        images, torch.arange(10), list("abcdefghij"), (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
    )
    batches = DeviceBatches(resolve(dataset), device=CPU, batch_size=10, shuffle=False)
    ((x, y),) = list(batches.epoch(0))
    item, label = dataset[3]
    torch.testing.assert_close(x[3], item)
    assert label == 3 and y[3] == 3
    expected = (
        images[3].float() / 255 - torch.tensor([0.5, 0.4, 0.3]).view(3, 1, 1)
    ) / torch.tensor([0.2, 0.25, 0.3]).view(3, 1, 1)
    torch.testing.assert_close(item, expected)


# -- order, shards, splits -------------------------------------------------------------------
def test_epoch_order_depends_only_on_seed_and_epoch():
    a = epoch_order(100, seed=1, epoch=3, shuffle=True, shard=Shard(), pad=True)
    assert torch.equal(a, epoch_order(100, seed=1, epoch=3, shuffle=True, shard=Shard(), pad=True))
    assert not torch.equal(
        a, epoch_order(100, seed=1, epoch=4, shuffle=True, shard=Shard(), pad=True)
    )
    assert not torch.equal(
        a, epoch_order(100, seed=2, epoch=3, shuffle=True, shard=Shard(), pad=True)
    )
    assert sorted(a.tolist()) == list(range(100))


def test_shards_cover_the_data_with_equal_counts():
    shards = [epoch_order(10, 0, 0, shuffle=True, shard=Shard(r, 3), pad=True) for r in range(3)]
    assert [len(s) for s in shards] == [4, 4, 4]
    assert set(torch.cat(shards).tolist()) == set(range(10))
    exact = [epoch_order(10, 0, 0, shuffle=False, shard=Shard(r, 3), pad=False) for r in range(3)]
    assert sorted(torch.cat(exact).tolist()) == list(range(10))


def test_split_is_seeded_shuffled_and_disjoint():
    labels = torch.arange(100) // 10  # sorted: a tail split would hold only classes 8 and 9
    data = resolve((torch.arange(100, dtype=torch.float32).view(100, 1, 1, 1), labels))
    train, val = split(data, 0.2, seed=0)
    assert len(train) == 80 and len(val) == 20
    seen = set(train.images.flatten().int().tolist()) | set(val.images.flatten().int().tolist())
    assert len(seen) == 100
    assert len(set(val.labels.tolist())) >= 5
    _, again_val = split(data, 0.2, seed=0)
    assert torch.equal(val.images, again_val.images)
    with pytest.raises(ValueError, match="DataLoader"):
        split(resolve(DataLoader(range(10)), need_labels=False), 0.2, seed=0)


def test_device_and_loader_batches_agree():
    images = torch.randint(0, 256, (50, 1, 6, 6), dtype=torch.uint8)
    labels = torch.arange(50) % 4
    data = InMemory(images, labels, DataFacts(mean=(0.3,), std=(0.2,)))
    device = DeviceBatches(data, device=CPU, batch_size=16, shuffle=True, seed=4, drop_last=True)
    dataset = ImageTensorDataset(images, labels, list("abcd"), (0.3,), (0.2,))
    loader = LoaderBatches(
        dataset, device=CPU, batch_size=16, shuffle=True, seed=4, drop_last=True, num_workers=0
    )
    assert len(device) == len(loader) == 3
    for (x1, y1), (x2, y2) in zip(device.epoch(2), loader.epoch(2), strict=True):
        torch.testing.assert_close(x1, x2)
        assert torch.equal(y1, y2)


def test_torchvision_mnist_family_takes_the_fast_path(tmp_path):
    from torchvision import transforms
    from torchvision.datasets import FashionMNIST

    fake_mnist(tmp_path / "FashionMNIST" / "raw", compress=False)
    plain = FashionMNIST(str(tmp_path), train=True, transform=transforms.ToTensor())
    source = resolve(plain)
    assert isinstance(source, InMemory)
    ((x, _),) = list(DeviceBatches(source, device=CPU, batch_size=12, shuffle=False).epoch(0))
    torch.testing.assert_close(x[5], plain[5][0])
    normalised = FashionMNIST(
        str(tmp_path),
        transform=transforms.Compose(
            [transforms.Resize(28), transforms.ToTensor(), transforms.Normalize((0.5,), (0.25,))]
        ),
    )
    ((x, _),) = list(
        DeviceBatches(resolve(normalised), device=CPU, batch_size=12, shuffle=False).epoch(0)
    )
    torch.testing.assert_close(x[2], normalised[2][0])
    rotated = FashionMNIST(str(tmp_path), transform=transforms.RandomRotation(10))
    source = resolve(rotated)  # a transform cnnzoo cannot batch: DataLoader path
    assert isinstance(source, Streamed) and source.data is rotated


@pytest.mark.parametrize(
    "data",
    [
        (torch.zeros(3, 1, 4, 4), torch.tensor([0.0, 1.5, 2.0])),
        (torch.zeros(3, 1, 4, 4), torch.tensor([True, False, True])),
        (torch.zeros(3, 1, 4, 4), torch.zeros(4)),
    ],
)
def test_bad_labels_are_refused(data):
    with pytest.raises(ValueError, match="labels"):
        resolve(data)


def test_whole_float_labels_are_class_indices():
    source = resolve((torch.zeros(3, 1, 4, 4), torch.tensor([0.0, 1.0, 2.0])))
    assert source.labels.dtype == torch.long and source.labels.tolist() == [0, 1, 2]


def test_unsupported_data_is_refused():
    with pytest.raises(TypeError, match="DataLoader"):
        resolve({"x": 1})


# -- augmentation ----------------------------------------------------------------------------
def test_hflip_flips_about_half_and_nothing_else():
    batch = torch.rand(400, 2, 5, 7)
    out = hflip(batch, torch.Generator().manual_seed(0))
    flipped = (out == batch.flip(-1)).flatten(1).all(1)
    kept = (out == batch).flatten(1).all(1)
    assert bool((flipped | kept).all()) and 150 < int(flipped.sum()) < 250


def test_random_crop_shifts_each_image_within_the_padding():
    batch = torch.arange(1, 1 + 16 * 8 * 8, dtype=torch.float32).view(16, 1, 8, 8)
    out = random_crop(batch, torch.Generator().manual_seed(1), padding=2)
    assert out.shape == batch.shape
    padded = torch.nn.functional.pad(batch, (2, 2, 2, 2))
    for i in range(16):
        windows = [padded[i, :, r : r + 8, c : c + 8] for r in range(5) for c in range(5)]
        assert any(torch.equal(out[i], w) for w in windows)
    assert not torch.equal(out, batch)


def test_make_augment_names_lists_and_callables():
    batch = torch.rand(8, 1, 8, 8)
    assert make_augment(None) is None
    same_seed = [
        make_augment("crop+flip")(batch, torch.Generator().manual_seed(3)) for _ in range(2)
    ]
    assert torch.equal(*same_seed)
    torch.testing.assert_close(
        make_augment(["crop", "flip"])(batch, torch.Generator().manual_seed(3)), same_seed[0]
    )
    assert torch.equal(make_augment(lambda b: b * 2)(batch, torch.Generator()), batch * 2)
    with pytest.raises(ValueError, match="unknown augmentation"):
        make_augment("mixup")


# -- real data -------------------------------------------------------------------------------
def test_fashion_mnist_from_the_debian_package(monkeypatch, tmp_path):
    if not (FASHION / "train-images-idx3-ubyte.gz").is_file():
        if os.environ.get("CI"):
            pytest.fail(f"CI must install dataset-fashion-mnist ({FASHION} is missing)")
        pytest.skip(
            f"Fashion-MNIST not installed at {FASHION} (apt-get install dataset-fashion-mnist)"
        )
    monkeypatch.setenv("HOME", str(tmp_path))  # an empty cache: the Debian files must be found
    monkeypatch.delenv("CNNZOO_DATA", raising=False)
    train = load_dataset("fashion-mnist", download=False)
    test = load_dataset("fashion-mnist", "test", download=False)
    assert train.images.shape == (60000, 1, 28, 28) and test.images.shape == (10000, 1, 28, 28)
    assert torch.equal(torch.bincount(train.labels), torch.full((10,), 6000))
    assert train.classes[0] == "T-shirt/top" and train.classes[9] == "Ankle boot"
    # the published statistics match the data
    scaled = train.images.float() / 255
    assert scaled.mean().item() == pytest.approx(train.mean[0], abs=5e-4)
    assert scaled.std().item() == pytest.approx(train.std[0], abs=5e-4)
