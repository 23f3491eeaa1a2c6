"""Finding an ImageFolder tree's classes and images: every folder once, and what was skipped.

torchvision's ``ImageFolder`` follows folder links with no memory of where it has been: one link
back up multiplies the images (a validation split then holds copies of training images) and two
make the scan endless. Here every folder is visited once, by its real path: a link to a folder
already scanned, a link to a folder within the tree (its images count where they are), or one
to a folder above it (which holds the tree itself) is skipped. Hidden entries
(``.ipynb_checkpoints``, ``.DS_Store``) are neither classes nor images, and files that are not
images by their extension are left out; each skip is said on the ``cnnzoo.data`` logger. A
FIFO or a broken link named as an image is listed, so that reading it names the problem.

Images are the extensions torchvision's ``ImageFolder`` takes, and ``.gif`` (read as
``predict`` reads it, the first frame), in the order ``ImageFolder`` lists them.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["IMAGE_EXTENSIONS", "FolderScan", "class_folders", "scan_images"]

IMAGE_EXTENSIONS = (
    ".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp", ".gif",
)  # fmt: skip
log = logging.getLogger("cnnzoo.data")
_SHOWN = 5  # examples named per kind of skip


@dataclass
class FolderScan:
    """The images under one split folder.

    Attributes:
        classes: The split folder's own class folders, sorted.
        paths: The image files, class by class, each folder's files sorted.
        targets: Each image's class, an index into ``classes``.
        skipped: What was left out, by kind ("a hidden entry", ...), the paths as found.
    """

    classes: list[str]
    paths: list[str] = field(default_factory=list)
    targets: list[int] = field(default_factory=list)
    skipped: dict[str, list[str]] = field(default_factory=dict)

    def skip(self, kind: str, path: str) -> None:
        """Record that ``path`` was left out, and why (``kind``)."""
        self.skipped.setdefault(kind, []).append(path)


def class_folders(folder: Path, scan: FolderScan | None = None) -> list[str]:
    """The class folders of ``folder``, sorted: visible folders (or links to folders).

    A link to a folder within the tree (or above it) is no class of its own; with ``scan``,
    such links and hidden entries are recorded as skipped.

    Raises:
        FileNotFoundError: ``folder`` is not a folder, or holds no class folder.
    """
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        entries = None
    tree = os.path.realpath(folder)
    classes = []
    for entry in entries or []:
        if not entry.is_dir():
            continue
        if entry.name.startswith("."):
            if scan is not None:
                scan.skip("hidden folders (not classes)", entry.path)
            continue
        why = _link_problem(entry, tree)
        if why is not None:
            if scan is not None:
                scan.skip(why, entry.path)
            continue
        classes.append(entry.name)
    if not classes:
        raise FileNotFoundError(
            f"no class folders under {folder}: an ImageFolder tree holds one subfolder per class "
            f"(e.g. {folder}/cat/001.jpg)"
        )
    return classes


def scan_images(folder: Path) -> FolderScan:
    """The images under ``folder``'s class folders, each folder scanned once.

    Raises:
        FileNotFoundError: No class folder, or a class folder without images.
    """
    scan = FolderScan([])
    scan.classes = class_folders(folder, scan)
    tree = os.path.realpath(folder)
    visited = {tree} | {os.path.realpath(os.path.join(folder, c)) for c in scan.classes}
    empty = []
    for index, name in enumerate(scan.classes):
        found = _walk(os.path.join(folder, name), tree, visited, scan)
        if not found:
            empty.append(name)
        scan.paths += found
        scan.targets += [index] * len(found)
    _report(folder, scan)
    if empty:
        raise FileNotFoundError(
            f"no images found under {folder} in the class folder(s) {', '.join(empty)}: an "
            f"ImageFolder tree holds one subfolder per class with images "
            f"({', '.join(IMAGE_EXTENSIONS)}), e.g. {folder}/cat/001.jpg"
        )
    return scan


def _walk(top: str, tree: str, visited: set[str], scan: FolderScan) -> list[str]:
    """The image files under ``top``, in ``ImageFolder``'s order (folders by path, files sorted)."""
    listed: list[tuple[str, list[str]]] = []
    pending = [top]
    while pending:
        directory = pending.pop()
        try:
            entries = list(os.scandir(directory))
        except OSError:
            scan.skip("folders that cannot be read", directory)
            continue
        files = []
        for entry in entries:
            if entry.name.startswith("."):
                scan.skip("hidden entries", entry.path)
            elif entry.is_dir():
                why = _link_problem(entry, tree)
                real = os.path.realpath(entry.path)
                if why is None and real in visited:
                    why = "links to a folder already scanned"
                if why is not None:
                    scan.skip(why, entry.path)
                    continue
                visited.add(real)
                pending.append(entry.path)
            elif not entry.name.lower().endswith(IMAGE_EXTENSIONS):
                scan.skip("files that are not images (by their extension)", entry.path)
            else:
                files.append(entry.name)
        listed.append((directory, sorted(files)))
    return [os.path.join(directory, name) for directory, names in sorted(listed) for name in names]


def _link_problem(entry: os.DirEntry[str], tree: str) -> str | None:
    """Why a folder link is not followed (within the tree, or above it), or None."""
    if not entry.is_symlink():
        return None
    real = os.path.realpath(entry.path)
    if real == tree or real.startswith(tree + os.sep):
        return "links to a folder within the tree (its images count where they are)"
    if tree.startswith(real.rstrip(os.sep) + os.sep):
        return "links to a folder above the tree (it holds the tree itself)"
    return None


def _report(folder: Path, scan: FolderScan) -> None:
    if not scan.skipped:
        return
    parts = []
    for kind, paths in scan.skipped.items():
        shown = ", ".join(os.path.relpath(p, folder) for p in paths[:_SHOWN])
        more = f" and {len(paths) - _SHOWN} more" if len(paths) > _SHOWN else ""
        parts.append(f"{len(paths)} {kind}: {shown}{more}")
    log.warning("image folder %s: skipped %s", folder, "; ".join(parts))
