"""Scanning an ImageFolder tree: folder links never multiply images or loop, hidden folders
are no class, GIFs are images as predict reads them, and whatever is skipped is said."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
import torch
from PIL import Image

from cnnzoo.data import load_dataset
from cnnzoo.data.images import read_image
from cnnzoo.data.scan import scan_images


def tree(root: Path, per_class: int = 3, classes=("bright", "dark")) -> Path:
    for shade, name in zip((200, 40), classes, strict=True):
        (root / "train" / name / "sub").mkdir(parents=True)
        for i in range(per_class):
            where = root / "train" / name / ("sub" if i == 0 else "")
            Image.new("RGB", (5, 4), (shade, i, 0)).save(where / f"{i}.png")
    return root


@pytest.fixture(autouse=True)
def data_logger(monkeypatch):
    # Another test's logging set-up may have disabled existing loggers (dictConfig does).
    monkeypatch.setattr(logging.getLogger("cnnzoo.data"), "disabled", False)


def test_the_order_and_labels_are_torchvisions_for_an_ordinary_tree(tmp_path):
    from torchvision.datasets import ImageFolder

    root = tree(tmp_path)
    scan = scan_images(root / "train")
    reference = ImageFolder(str(root / "train"))
    assert scan.classes == reference.classes
    assert list(zip(scan.paths, scan.targets, strict=True)) == reference.samples
    assert not scan.skipped


def test_links_back_up_neither_multiply_the_images_nor_loop(tmp_path, caplog):
    root = tree(tmp_path)
    os.symlink("..", root / "train" / "bright" / "sub" / "up")  # into the tree's root
    os.symlink("../..", root / "train" / "dark" / "loop")  # above the tree (holds it)
    os.symlink("../dark", root / "train" / "bright" / "twin")  # another class, within the tree
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    Image.new("RGB", (5, 4), (9, 9, 9)).save(outside / "x.png")
    os.symlink(outside, root / "train" / "dark" / "ext1")  # outside the tree: followed, once
    os.symlink(outside, root / "train" / "dark" / "ext2")
    with caplog.at_level(logging.WARNING, logger="cnnzoo.data"):
        data = load_dataset(root, "train", in_memory=True)
    assert len(data) == 7 and data.labels.tolist() == [0, 0, 0, 1, 1, 1, 1]
    text = caplog.text
    assert "within the tree" in text and "above the tree" in text and "already scanned" in text
    assert "bright/sub/up" in text and "dark/loop" in text


def test_two_loops_end(tmp_path):
    root = tree(tmp_path)
    outside = tmp_path / "a"
    (outside / "b").mkdir(parents=True)
    Image.new("RGB", (5, 4), (1, 2, 3)).save(outside / "b" / "y.png")
    os.symlink(outside, outside / "b" / "back")  # a loop outside the tree
    os.symlink(outside / "b", outside / "again")
    os.symlink(outside, root / "train" / "dark" / "link")
    assert len(scan_images(root / "train").paths) == 7


def test_hidden_folders_are_no_class_and_hidden_or_foreign_files_are_said(tmp_path, caplog):
    root = tree(tmp_path)
    (root / "train" / ".ipynb_checkpoints").mkdir()
    (root / "train" / "dark" / ".ipynb_checkpoints").mkdir()
    Image.new("RGB", (5, 4)).save(root / "train" / "dark" / ".ipynb_checkpoints" / "0.png")
    (root / "train" / "dark" / "notes.txt").write_text("not an image")
    (root / "train" / "dark" / ".DS_Store").write_bytes(b"\0")
    with caplog.at_level(logging.WARNING, logger="cnnzoo.data"):
        data = load_dataset(root, "train", in_memory=True)
    assert data.classes == ["bright", "dark"] and len(data) == 6
    assert "hidden folders (not classes): .ipynb_checkpoints" in caplog.text
    assert "not images" in caplog.text and "notes.txt" in caplog.text


def test_gif_images_are_read_as_predict_reads_them(tmp_path):
    root = tree(tmp_path)
    gif = root / "train" / "dark" / "moving.gif"
    frames = [Image.new("P", (5, 4), color) for color in (7, 200)]
    frames[0].save(gif, save_all=True, append_images=frames[1:])
    data = load_dataset(root, "train", in_memory=True)
    assert len(data) == 7
    at = scan_images(root / "train").paths.index(str(gif))
    assert data.labels[at] == 1 and torch.equal(data.images[at], read_image(gif, channels=3))
