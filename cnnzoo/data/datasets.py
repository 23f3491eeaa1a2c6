"""Image classification datasets held in memory as ``uint8`` tensors.

``load_dataset("fashion-mnist")`` returns an :class:`ImageTensorDataset`: the whole split as one
``uint8`` tensor ``(N, C, H, W)`` plus its labels, class names and normalisation statistics. The
training engine moves those tensors to the device once and draws batches by index; the object is
also an ordinary ``Dataset`` yielding normalised ``(float image, label)`` pairs, so it works with a
``DataLoader`` like any torchvision dataset.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .._advice import for_cli
from .budget import InMemoryChoice
from .streamed import StreamedImageFolder
from .tensors import ImageTensorDataset

__all__ = ["DATASETS", "DatasetSpec", "ImageTensorDataset", "load_dataset", "search_paths"]

# Debian's ``dataset-fashion-mnist`` package installs the four IDX files here.
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
_SPLITS = ("train", "test")


@dataclass(frozen=True)
class DatasetSpec:
    """What cnnzoo knows about a named dataset.

    Attributes:
        name: cnnzoo's name for it ("fashion-mnist").
        torchvision_class: The torchvision dataset class that downloads it.
        classes: Class names, index order.
        mean: Per-channel mean of the training images, in [0, 1] units.
        std: Per-channel standard deviation of the training images, in [0, 1] units.
        extra_dirs: Directories searched after the usual ones (system packages).
    """

    name: str
    torchvision_class: str
    classes: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    extra_dirs: tuple[Path, ...] = ()


DATASETS: dict[str, DatasetSpec] = {
    "fashion-mnist": DatasetSpec(
        "fashion-mnist",
        "FashionMNIST",
        (
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ),
        (0.2860,),
        (0.3530,),
        (DEBIAN_FASHION_MNIST,),
    ),
    "mnist": DatasetSpec("mnist", "MNIST", tuple(str(d) for d in range(10)), (0.1307,), (0.3081,)),
    "cifar10": DatasetSpec(
        "cifar10",
        "CIFAR10",
        ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
        (0.4914, 0.4822, 0.4465),
        (0.2470, 0.2435, 0.2616),
    ),
}
_ALIASES = {
    "fashion_mnist": "fashion-mnist",
    "fashionmnist": "fashion-mnist",
    "cifar-10": "cifar10",
}


def search_paths(name: str, root: str | os.PathLike | None = None) -> list[Path]:
    """The directories ``load_dataset`` looks in for ``name``, in order.

    Args:
        name: A dataset name from ``DATASETS``.
        root: The directory the caller passed, searched first.

    Returns:
        ``root``, ``$CNNZOO_DATA``, ``~/.cache/cnnzoo``, then system directories for ``name``.
    """
    spec = _spec(name)
    places: list[Path] = []
    if root is not None:
        places.append(Path(root).expanduser())
    if os.environ.get("CNNZOO_DATA"):
        places.append(Path(os.environ["CNNZOO_DATA"]).expanduser())
    places.append(_cache_dir())
    places.extend(spec.extra_dirs)
    return places


def load_dataset(
    name: str | os.PathLike,
    split: str = "train",
    root: str | os.PathLike | None = None,
    *,
    download: bool = True,
    image_size: int | tuple[int, int] | None = None,
    in_memory: InMemoryChoice = "auto",
    memory_budget: int | float | str | None = None,
    verbose: int = 1,
) -> ImageTensorDataset | StreamedImageFolder:
    """Load a dataset split: into memory, or (a large image folder) streamed from disk.

    Named datasets ("fashion-mnist", "mnist", "cifar10") are looked for in ``root``,
    ``$CNNZOO_DATA``, ``~/.cache/cnnzoo`` and, for Fashion-MNIST, Debian's
    ``/usr/share/datasets/fashion-mnist``; each directory may hold the raw files directly or in
    torchvision's layout. When none has them, torchvision downloads them into ``root`` (or
    ``~/.cache/cnnzoo``).

    A directory path instead loads an ImageFolder tree (``<dir>/<split>/<class>/<image>``; a
    tree of class folders ``<dir>/<class>/<image>`` has a ``train`` split only). Test labels
    follow the class names of ``train/``. Its decoded images are kept in memory when they fit
    a budget (``in_memory="auto"``: half the memory free to the process, within its
    container's limit and ``ulimit -v``, and half the free CUDA memory when ``fit`` would put
    them there; ``memory_budget=`` or ``CNNZOO_MEMORY_BUDGET`` sets it) and streamed from disk
    otherwise (a :class:`StreamedImageFolder`: same classes, labels, statistics and answers,
    memory that does not grow with the folder); the result's ``placement`` says which and why.

    Args:
        name: "fashion-mnist", "mnist", "cifar10", or an ImageFolder directory.
        split: "train" or "test".
        root: Directory to look in first and to download into.
        download: Download with torchvision when the files are nowhere on disk.
        image_size: Resize every image to this size, as ``predict`` resizes an image file
            (needed when a folder's images differ in size, or for a model of another fixed
            size: ``cifar_cnn`` takes Fashion-MNIST at 32). ``mean`` and ``std`` of an
            ImageFolder are measured on its ``train`` split; a named dataset keeps its own.
        in_memory: ImageFolder only: True (in memory), False (streamed from disk) or "auto".
            Named datasets are small and always in memory (False is refused).
        memory_budget: ImageFolder only: the budget of "auto", in bytes or as "2GB";
            None: ``$CNNZOO_MEMORY_BUDGET``, else the share of free memory above.
        verbose: ImageFolder only: 1 shows the decoding when it takes more than a few seconds
            (a bar on a terminal or in a notebook, else a line every few seconds); 0 nothing.

    Returns:
        The split: an :class:`ImageTensorDataset` in memory, or a :class:`StreamedImageFolder`.

    Raises:
        ValueError: Unknown name or split; an unreadable image in an ImageFolder (named).
        FileNotFoundError: The data is nowhere on disk and could not be downloaded (the message
            names every place looked and how to get the data); a directory path that does not
            exist; an ImageFolder without the split's folder.

    Example:
        >>> train = load_dataset("fashion-mnist", "train")
        >>> train.images.shape, train.classes[0]
        (torch.Size([60000, 1, 28, 28]), 'T-shirt/top')
    """
    if image_size is not None:
        from .folder import checked_image_size

        checked_image_size(image_size)  # "28" is not 2x8: refused before any folder is read
    if split not in _SPLITS:
        raise ValueError(f"split must be one of {_SPLITS}, got {split!r}")
    if isinstance(name, os.PathLike) or (isinstance(name, str) and Path(name).is_dir()):
        from .folder import load_image_folder  # PIL and torchvision's ImageFolder only here

        return load_image_folder(
            _image_folder(name),
            split,
            image_size=image_size,
            in_memory=in_memory,
            memory_budget=memory_budget,
            verbose=verbose,
        )
    if not isinstance(name, str):
        raise TypeError(
            f"load_dataset takes a dataset name or a directory path, got {type(name).__name__}"
        )
    if _key(name) not in DATASETS and _looks_like_a_path(name):
        return load_dataset(
            Path(name),
            split,
            root,
            download=download,
            image_size=image_size,
            in_memory=in_memory,
            memory_budget=memory_budget,
            verbose=verbose,
        )
    spec = _spec(name)
    if in_memory is False:
        held = f"{spec.name} is held in memory (its decoded images take a few hundred MB at most); "
        raise for_cli(
            ValueError(f"{held}in_memory=False streams image folders only: leave it at 'auto'"),
            f"{held}--in-memory no streams image folders only: leave it at auto",
        )
    places = search_paths(spec.name, root)
    for place in places:
        found = _read_from(spec, place, split)
        if found is not None:
            return _as_dataset(spec, *found, image_size=image_size)
    download_error = None
    if download:
        target = Path(root).expanduser() if root is not None else _cache_dir()
        try:
            found = _download(spec, target, split)
        except Exception as error:  # offline, proxy, disk full: report it with the places looked
            download_error = error
        else:
            return _as_dataset(spec, *found, image_size=image_size)
    raise FileNotFoundError(_missing_message(spec, split, places, download, download_error))


# -- finding and reading the files -----------------------------------------------------------
def _key(name: str) -> str:
    return _ALIASES.get(name.lower(), name.lower())


def _spec(name: str) -> DatasetSpec:
    key = _key(name)
    if key not in DATASETS:
        raise ValueError(
            f"unknown dataset {name!r}; choose one of {sorted(DATASETS)} or pass the path of an "
            f"ImageFolder directory (there is no directory {name!r} here either)"
        )
    return DATASETS[key]


def _looks_like_a_path(name: str) -> bool:
    """A name with a path separator, a leading dot or tilde, or naming something on disk."""
    return (
        os.sep in name
        or (os.altsep is not None and os.altsep in name)
        or name.startswith((".", "~"))
        or Path(name).exists()
    )


def _image_folder(name: str | os.PathLike) -> Path:
    """The ImageFolder root ``name`` names, which must be an existing directory."""
    path = Path(name).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise ValueError(
            f"{str(path)!r} is a file, not a directory: load_dataset takes a dataset name "
            f"({', '.join(sorted(DATASETS))}) or an ImageFolder directory "
            "(<dir>/train/<class>/<image>, <dir>/test/<class>/<image>)"
        )
    raise FileNotFoundError(
        f"no such directory: {str(path)!r}. load_dataset takes a dataset name "
        f"({', '.join(sorted(DATASETS))}) or the path of an existing ImageFolder directory"
    )


def _cache_dir() -> Path:
    return Path("~/.cache/cnnzoo").expanduser()


def _read_from(
    spec: DatasetSpec, place: Path, split: str
) -> tuple[torch.Tensor, torch.Tensor] | None:
    if spec.name == "cifar10":
        return _read_cifar(place, split)
    prefix = "train" if split == "train" else "t10k"
    # Debian's flat layout first, then torchvision's ``<root>/<Class>/raw``.
    for folder in (place, place / spec.torchvision_class / "raw"):
        images = _find_file(folder, f"{prefix}-images-idx3-ubyte")
        labels = _find_file(folder, f"{prefix}-labels-idx1-ubyte")
        if images is not None and labels is not None:
            return read_idx(images).unsqueeze(1), read_idx(labels).long()
    return None


def _find_file(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def read_idx(path: Path) -> torch.Tensor:
    """Read an IDX file (the MNIST format), gzipped or not, into a ``uint8`` tensor."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as file:
        data = file.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ValueError(f"{path} is not an unsigned-byte IDX file")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    offset = 4 + 4 * ndim
    expected = int(np.prod(shape))
    if len(data) - offset != expected:
        raise ValueError(f"{path} is truncated: expected {expected} values for shape {shape}")
    array = np.frombuffer(data, dtype=np.uint8, offset=offset).reshape(shape)
    return torch.from_numpy(array.copy())


def _read_cifar(place: Path, split: str) -> tuple[torch.Tensor, torch.Tensor] | None:
    if not (place / "cifar-10-batches-py").is_dir():
        return None
    from torchvision.datasets import CIFAR10

    try:
        data = CIFAR10(str(place), train=split == "train", download=False)
    except RuntimeError:  # folder present but incomplete or corrupt
        return None
    images = torch.from_numpy(data.data).permute(0, 3, 1, 2).contiguous()
    return images, torch.tensor(data.targets, dtype=torch.long)


def _download(spec: DatasetSpec, target: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    import torchvision.datasets

    target.mkdir(parents=True, exist_ok=True)
    dataset_class = getattr(torchvision.datasets, spec.torchvision_class)
    dataset_class(str(target), train=split == "train", download=True)
    found = _read_from(spec, target, split)
    if found is None:
        raise FileNotFoundError(
            f"torchvision downloaded {spec.name} but its files are not in {target}"
        )
    return found


def _as_dataset(
    spec: DatasetSpec,
    images: torch.Tensor,
    labels: torch.Tensor,
    image_size: int | tuple[int, int] | None = None,
) -> ImageTensorDataset:
    if image_size is not None:
        images = _resized(spec.name, images, image_size)
    return ImageTensorDataset(images, labels, spec.classes, spec.mean, spec.std)


def _resized(name: str, images: torch.Tensor, image_size: int | tuple[int, int]) -> torch.Tensor:
    """``uint8`` images at ``image_size``, resized as ``predict`` resizes an image file.

    Raises:
        ValueError: The resized images would not fit in half the memory free to the process.
    """
    from .budget import _bytes, memory_within_limits
    from .folder import checked_image_size
    from .images import resize_pixels

    height, width = checked_image_size(image_size)
    need = len(images) * images.shape[1] * height * width
    room, bound = memory_within_limits()
    if tuple(images.shape[-2:]) != (height, width) and need > room // 2:
        raise for_cli(
            ValueError(
                f"{name} at {height}x{width} takes {_bytes(need)}, more than half of the "
                f"{_bytes(room)} {bound}: pass a smaller image_size"
            ),
            f"{name} at {height}x{width} takes {_bytes(need)}, more than half of the "
            f"{_bytes(room)} {bound}: pass a smaller --image-size",
        )
    return resize_pixels(images, (height, width))


def _missing_message(
    spec: DatasetSpec, split: str, places: list[Path], download: bool, error: Exception | None
) -> str:
    looked = "\n".join(f"  - {p}" for p in places)
    lines = [f"cannot find the {spec.name} {split} split. Looked in:", looked]
    if error is not None:
        lines.append(f"Downloading with torchvision failed: {type(error).__name__}: {error}")
    elif not download:
        lines.append("Downloading was turned off (download=False).")
    lines.append(
        f"To fix: connect to the internet and call load_dataset({spec.name!r}) again, or copy "
        f"the files (torchvision's {spec.torchvision_class} raw files) into one of the "
        "directories above or set CNNZOO_DATA to their directory."
    )
    if spec.name == "fashion-mnist":
        lines.append("On Debian or Ubuntu: sudo apt-get install dataset-fashion-mnist")
    return "\n".join(lines)
