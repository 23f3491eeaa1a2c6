"""The Hugging Face Hub: ``save_pretrained``, ``from_pretrained`` and ``push_to_hub``.

A pretrained directory (or Hub repository) holds ``config.json``, ``model.safetensors`` (the
weights, written by ``cnnzoo.save``) and a ``README.md`` model card. ``config.json`` follows the
layout timm and the Hugging Face Hub read: ``architecture``, ``num_classes``, ``num_features``,
``pretrained_cfg`` (input size, mean, std, interpolation, crop), ``label_names``, and cnnzoo's
model options in ``model_args``; folders written by earlier cnnzoo versions (a ``"model"``
object) still load. Unlike ``huggingface_hub.PyTorchModelHubMixin``, whose ``from_pretrained``
defaults to ``strict=False`` and so "loads" a wrong architecture silently, loading here is
always strict.

``huggingface_hub`` is imported inside the functions only, so ``import cnnzoo`` stays light.

Longer than 450 lines because writing and reading the one ``config.json`` layout (and the older
one it still reads) must change together, and the checks of every file read from a folder or a
repository sit beside the read they guard. The model card is the part to move out when it grows.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import numbers
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ._files import read_json
from ._version import __version__
from .checkpoint._io import atomic_files, check_regular_file, read_safetensors, write_safetensors
from .checkpoint._weights import (
    SAVE_ID_KEY,
    data_config_of,
    model_config,
    read_data_config,
    unwrap_model,
    weights_payload,
)
from .devices import resolve_device
from .models import factory, info

__all__ = ["CONFIG_NAME", "WEIGHTS_NAME", "from_pretrained", "push_to_hub", "save_pretrained"]

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
CARD_NAME = "README.md"
# A config.json larger than this is not one cnnzoo wrote (label names included, it is kilobytes).
_MAX_CONFIG_BYTES = 16 * 1024 * 1024


# -- saving ---------------------------------------------------------------------------------------
def save_pretrained(
    model: nn.Module,
    directory: str | os.PathLike,
    *,
    metrics: Mapping[str, float] | None = None,
    repo_id: str | None = None,
) -> Path:
    """Write a model as ``config.json``, ``model.safetensors`` and a ``README.md`` model card.

    Args:
        model: A model built by ``cnnzoo.models.get`` (its configuration is what
            ``from_pretrained`` rebuilds).
        directory: Destination folder, created if needed; files in it are replaced.
        metrics: Evaluation results to record in the config and the model card, e.g.
            ``{"test_accuracy": 0.91}``.
        repo_id: The Hub repository the folder is meant for, used in the card's usage example.

    Returns:
        The directory.

    Raises:
        ValueError: The model was not built by ``cnnzoo.models.get``, or ``metrics`` holds
            non-numbers.
    """
    model = unwrap_model(model)  # a compiled or DataParallel model is saved as the one inside
    config = model_config(model)
    if config is None:
        raise ValueError(
            f"save_pretrained needs a model built by cnnzoo.models.get: it records the registry "
            f"configuration that from_pretrained rebuilds, and this {type(model).__name__} has "
            "none. Register your builder with cnnzoo.models.register and build through "
            "cnnzoo.models.get, or save the weights with cnnzoo.save"
        )
    metrics = _checked_metrics(metrics)
    directory = Path(directory)
    summary = _summary(model, config)
    tensors, header = weights_payload(model)
    hub_config = _hub_config(model, config, summary, metrics)
    save_id = _content_id(tensors, header, hub_config)
    header[SAVE_ID_KEY] = save_id
    hub_config["cnnzoo_save_id"] = save_id
    card = _model_card(config, summary, metrics, repo_id or str(directory), hub_config)
    names = (CARD_NAME, CONFIG_NAME, WEIGHTS_NAME)  # renamed in reverse: the weights first
    # All three are written in full before any replaces its old file; and should a crash
    # come between the renames, the save id tells from_pretrained the files do not belong
    # together, rather than load new weights under an old config.json.
    with atomic_files([directory / name for name in names]) as (card_tmp, config_tmp, weights):
        write_safetensors(weights, tensors, header, shown=directory / WEIGHTS_NAME)
        config_tmp.write_text(json.dumps(hub_config, indent=2) + "\n", encoding="utf-8")
        card_tmp.write_text(str(card), encoding="utf-8")
    return directory


def _content_id(
    tensors: Mapping[str, torch.Tensor], header: Mapping[str, str], hub_config: dict[str, Any]
) -> str:
    """The save id: a digest of what is saved, so the same model saved twice gives equal bytes.

    Two saves of different content get different ids (what the id is for: files of two saves
    are never taken for one); two saves of the same content may share their files.
    """
    digest = hashlib.sha256()
    digest.update(json.dumps([sorted(header.items()), hub_config], sort_keys=True).encode())
    for name in sorted(tensors):
        tensor = tensors[name]
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


def _checked_metrics(metrics: Mapping[str, float] | None) -> dict[str, float]:
    checked = {}
    for name, value in (metrics or {}).items():
        is_number = isinstance(value, numbers.Real) and not isinstance(value, bool)
        if not (is_number or (isinstance(value, torch.Tensor) and value.numel() == 1)):
            raise ValueError(f"metric {name!r} must be a number, got {value!r}")
        checked[str(name)] = float(value)
    return checked


def _summary(model: nn.Module, config: dict[str, Any]) -> dict[str, Any]:
    summary: dict[str, Any] = {"num_parameters": sum(p.numel() for p in model.parameters())}
    for attribute in ("input_size", "min_input_size", "num_features"):
        value = getattr(model, attribute, None)
        if value is not None:
            summary[attribute] = list(value) if isinstance(value, tuple) else value
    return summary


def _hub_config(
    model: nn.Module, config: dict[str, Any], summary: dict[str, Any], metrics: dict[str, float]
) -> dict[str, Any]:
    """config.json in the layout of timm and the Hub, with cnnzoo's options in model_args."""
    pretrained_cfg = data_config_of(model) or {}
    label_names = pretrained_cfg.pop("label_names", None)  # top level, as timm writes it
    if "input_size" not in pretrained_cfg and "input_size" in summary:
        pretrained_cfg["input_size"] = summary["input_size"]
    hub_config: dict[str, Any] = {"architecture": config["name"]}
    hub_config["num_classes"] = config.get("num_classes")
    if "num_features" in summary:
        hub_config["num_features"] = summary["num_features"]
    hub_config["pretrained_cfg"] = pretrained_cfg
    if label_names:
        hub_config["label_names"] = label_names
    hub_config["model_args"] = {k: v for k, v in config.items() if k not in ("name", "num_classes")}
    hub_config |= {"library_name": "cnnzoo", "cnnzoo_version": __version__}
    hub_config["num_parameters"] = summary["num_parameters"]
    if "min_input_size" in summary:
        hub_config["min_input_size"] = summary["min_input_size"]
    return hub_config | ({"metrics": metrics} if metrics else {})


def _model_card(
    config: dict[str, Any],
    summary: dict[str, Any],
    metrics: dict[str, float],
    where: str,
    hub_config: dict[str, Any],
) -> Any:
    from huggingface_hub import ModelCard, ModelCardData

    name = config["name"]
    try:
        model_info = info(name)
        family, paper = model_info.family, model_info.paper
    except ValueError:  # not registered here any more; the card is still useful without it
        family, paper = name, ""
    data = ModelCardData(
        library_name="cnnzoo",
        pipeline_tag="image-classification",
        tags=sorted({"cnnzoo", "pytorch", "image-classification", family}),
    )
    options = ", ".join(
        f"{k}={v!r}" for k, v in sorted(config.items()) if k not in ("name", "num_classes")
    )
    pixels = hub_config["pretrained_cfg"]
    names = hub_config.get("label_names") or []
    classes = str(config.get("num_classes", "?"))
    if names:
        classes += ": " + ", ".join(names[:10]) + (", ..." if len(names) > 10 else "")
    normalisation = (
        f"mean {_rounded(pixels['mean'])}, std {_rounded(pixels['std'])}"
        if pixels.get("mean") is not None
        else "not recorded (the model has not been trained by cnnzoo.fit)"
    )
    rows = [
        ("Architecture", f"`{name}` ({family})" + (f", {paper}" if paper else "")),
        ("Classes", classes),
        ("Input size (C×H×W)", "×".join(map(str, pixels.get("input_size") or [])) or "?"),
        ("Normalisation of pixels in [0, 1]", normalisation),
        ("Minimum input (H×W)", "×".join(map(str, summary.get("min_input_size") or [])) or "?"),
        ("Parameters", f"{summary['num_parameters']:,}"),
        ("Options", options or "none"),
    ]
    lines = [
        f"# {name}",
        "",
        f"A `{name}` image classifier saved with [cnnzoo](https://pypi.org/project/cnnzoo/).",
        "",
        "| | |",
        "|---|---|",
        *(f"| {key} | {value} |" for key, value in rows),
        "",
    ]
    if metrics:
        lines += ["## Metrics", "", "| metric | value |", "|---|---|"]
        lines += [f"| {key} | {value:.4g} |" for key, value in metrics.items()]
        lines.append("")
    lines += [
        "## Usage",
        "",
        "```python",
        "import cnnzoo",
        "",
        f'model = cnnzoo.from_pretrained("{where}")',
        "```",
        "",
        "`config.json` holds the configuration that rebuilds the model through the cnnzoo "
        "registry and its data configuration (`pretrained_cfg`: input size, mean, std; "
        "`label_names`), which `cnnzoo.predict` and `cnnzoo.classify` apply to images; "
        "`model.safetensors` holds the weights. Loading is strict: a file that does not fit "
        "the configuration is refused.",
        "",
    ]
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(lines))


def _rounded(values: list[float]) -> str:
    return "(" + ", ".join(f"{v:.4g}" for v in values) + ")"


# -- loading --------------------------------------------------------------------------------------
def from_pretrained(
    repo_id_or_directory: str | os.PathLike,
    *,
    device: str | torch.device = "cpu",
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    token: str | bool | None = None,
    force_download: bool = False,
    local_files_only: bool = False,
) -> nn.Module:
    """Load a model written by ``save_pretrained``, from a local folder or the Hub.

    Loading is strict: every weight must fit the configuration exactly.

    Args:
        repo_id_or_directory: A local directory, or a Hub repository id (``"user/name"``).
        device: Where to put the model.
        revision: Hub branch, tag or commit (default ``"main"``).
        cache_dir: Hub cache folder (default: huggingface_hub's).
        token: Hub token for private repositories.
        force_download: Download again even if cached.
        local_files_only: Use only the local Hub cache (as ``HF_HUB_OFFLINE=1`` does).

    Returns:
        The model, in evaluation mode, on ``device``, with its data configuration
        (``model.pretrained_cfg``) from ``config.json``.

    Raises:
        FileNotFoundError: No such directory, repository, revision or file; or, offline, a
            repository that is not in the cache.
        ValueError: An invalid repository id, an unreadable configuration, weights that do not
            fit it, or a device this machine does not have.
    """
    target = resolve_device(device)
    local = Path(repo_id_or_directory).expanduser()
    if local.is_dir():
        config_path, weights_path = local / CONFIG_NAME, local / WEIGHTS_NAME
        for path in (config_path, weights_path):
            if not path.exists():
                raise FileNotFoundError(
                    f"{str(local)!r} is not a cnnzoo pretrained directory: {path.name} is "
                    "missing (save_pretrained writes config.json and model.safetensors)"
                )
            check_regular_file(path, path.name)
    elif local.is_file():
        raise ValueError(
            f"{str(local)!r} is a file; from_pretrained takes a directory or a Hub repo id. "
            "Load single weight files with cnnzoo.load"
        )
    else:
        repo_id = str(repo_id_or_directory)
        config_path, weights_path = (
            _hub_file(repo_id, name, revision, cache_dir, token, force_download, local_files_only)
            for name in (CONFIG_NAME, WEIGHTS_NAME)
        )
    config, data_config, save_id = _read_config(config_path)
    tensors, metadata = read_safetensors(weights_path)
    # A config.json without an id was written before save ids (or by hand): trusted as before.
    if save_id is not None and metadata.get(SAVE_ID_KEY) != save_id:
        raise ValueError(
            f"{str(config_path)!r} and {str(weights_path)!r} come from two different saves (a "
            "save_pretrained was interrupted between its writes, or one file was copied from "
            "another folder), so the configuration may not describe the weights. Save the "
            "model again with cnnzoo.save_pretrained"
        )
    if data_config is None:  # a folder written before config.json held it
        data_config = read_data_config(weights_path, metadata)
    return factory.rebuild(
        config,
        tensors,
        source=repr(str(weights_path)),
        config_source=repr(str(config_path)),
        device=target,
        data_config=data_config,
    )


def _read_config(path: Path) -> tuple[dict[str, Any], dict[str, Any] | None, str | None]:
    """The registry configuration, the data configuration (if any) and the save id in a config.json.

    Reads the timm/Hub layout (``architecture``, ``num_classes``, ``model_args``,
    ``pretrained_cfg``, ``label_names``) and the nested layout of earlier cnnzoo versions
    (``{"model": {"name": ..., ...}}``).
    """
    check_regular_file(path, "config.json")  # named as missing, or as the FIFO it is
    # save_pretrained writes a few kilobytes; the reader bounds size, depth and numbers.
    content = read_json(path, "a cnnzoo config.json", max_bytes=_MAX_CONFIG_BYTES)
    save_id = content.get("cnnzoo_save_id") if isinstance(content, dict) else None
    save_id = save_id if isinstance(save_id, str) else None  # None: written before save ids
    if isinstance(content, dict) and isinstance(content.get("architecture"), str):
        return (*_read_hub_layout(path, content), save_id)
    config = content.get("model") if isinstance(content, dict) else None
    if not isinstance(config, dict) or not isinstance(config.get("name"), str):
        raise ValueError(
            f'{str(path)!r} is not a cnnzoo config: it needs an "architecture" (the registry '
            'name) with "model_args", or, as earlier cnnzoo versions wrote it, a "model" object '
            'with the registry "name" and options (write it with cnnzoo.save_pretrained)'
        )
    return config, None, save_id


def _read_hub_layout(
    path: Path, content: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    args = content.get("model_args", {})
    data = content.get("pretrained_cfg")
    if not isinstance(args, dict) or not isinstance(data, dict | None):
        raise ValueError(
            f'{str(path)!r} is not a valid cnnzoo config: "model_args" and "pretrained_cfg" '
            "must be JSON objects"
        )
    config = {"name": content["architecture"], **args}
    if content.get("num_classes") is not None:
        config["num_classes"] = content["num_classes"]
    if data is None:
        return config, None
    data = dict(data)
    if "num_classes" in config:  # the top level wins, as in timm
        data["num_classes"] = config["num_classes"]
    if "label_names" in content:
        data["label_names"] = content["label_names"]
    return config, data


def _hub_file(
    repo_id: str,
    filename: str,
    revision: str | None,
    cache_dir: str | os.PathLike | None,
    token: str | bool | None,
    force_download: bool,
    local_files_only: bool,
) -> Path:
    """Download (or find in the cache) one file of a Hub repository, with clear errors."""
    from huggingface_hub import constants, hf_hub_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        HFValidationError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    where = f"{repo_id!r}" + (f" (revision {revision!r})" if revision else "")
    try:
        return Path(
            hf_hub_download(
                repo_id,
                filename,
                revision=revision,
                cache_dir=None if cache_dir is None else Path(cache_dir),
                token=token,
                force_download=force_download,
                local_files_only=local_files_only,
                library_name="cnnzoo",
                library_version=__version__,
            )
        )
    except HFValidationError as err:
        raise ValueError(
            f"{str(repo_id)!r} is neither an existing directory nor a valid Hub repo id "
            f"('user/name'): {err}"
        ) from None
    except LocalEntryNotFoundError:
        cache = str(cache_dir or constants.HF_HUB_CACHE)
        if constants.is_offline_mode() or local_files_only:
            reason = (
                "HF_HUB_OFFLINE=1 forbids downloading it"
                if constants.is_offline_mode()
                else "local_files_only=True forbids downloading it"
            )
            raise FileNotFoundError(
                f"{filename} of Hub repo {where} is not in the Hugging Face cache ({cache!r}) "
                f"and {reason}. Download it once while online (cnnzoo.from_pretrained or "
                f"`hf download {repo_id}`), or unset HF_HUB_OFFLINE. (No local directory "
                f"{repo_id!r} exists either.)"
            ) from None
        raise FileNotFoundError(
            f"could not reach the Hugging Face Hub to download {filename} of {where}, and it is "
            f"not in the cache ({cache!r}); no local directory {repo_id!r} exists either. Check "
            "the connection, or pass a local directory"
        ) from None
    except GatedRepoError:
        raise FileNotFoundError(
            f"Hub repo {where} is gated: accept its conditions on huggingface.co and pass token=..."
        ) from None
    except RepositoryNotFoundError:
        raise FileNotFoundError(
            f"Hub repo {where} does not exist, or is private (pass token=... for private "
            "repos); a local directory of that name does not exist either"
        ) from None
    except RevisionNotFoundError:
        raise FileNotFoundError(f"Hub repo {repo_id!r} has no revision {revision!r}") from None
    except EntryNotFoundError:
        raise FileNotFoundError(
            f"Hub repo {where} has no {filename}: it was not written by cnnzoo.save_pretrained"
        ) from None


# -- uploading ------------------------------------------------------------------------------------
def push_to_hub(
    model: nn.Module,
    repo_id: str,
    *,
    private: bool | None = None,
    token: str | None = None,
    revision: str | None = None,
    commit_message: str | None = None,
    create_pr: bool = False,
    metrics: Mapping[str, float] | None = None,
) -> Any:
    """Upload a model to a Hub repository (created if needed) as ``save_pretrained`` writes it.

    Args:
        model: A model built by ``cnnzoo.models.get``.
        repo_id: ``"user/name"`` or ``"organisation/name"``.
        private: Make a newly created repository private (``None``: the account's default).
        token: Hub token (default: the logged-in one, or ``HF_TOKEN``).
        revision: Branch to commit to (default ``"main"``).
        commit_message: Commit message.
        create_pr: Open a pull request instead of committing directly.
        metrics: Evaluation results to record in the config and model card.

    Returns:
        huggingface_hub's ``CommitInfo`` (its ``commit_url`` links the commit).

    Raises:
        ValueError: An invalid repo id, or a model not built by ``cnnzoo.models.get``.
        ConnectionError: The Hub cannot be reached (no network, ``HF_HUB_OFFLINE=1``).
    """
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as err:
        raise ValueError(f"invalid Hub repo id {repo_id!r}: {err}") from None
    api = HfApi(token=token)
    with tempfile.TemporaryDirectory(prefix="cnnzoo-push-") as folder:
        save_pretrained(model, folder, metrics=metrics, repo_id=repo_id)  # fail before the Hub
        try:
            api.create_repo(repo_id, private=private, exist_ok=True, token=token)
            name = model_config(model)["name"]  # type: ignore[index]
            return api.upload_folder(
                repo_id=repo_id,
                folder_path=folder,
                commit_message=commit_message or f"Upload {name} with cnnzoo",
                revision=revision,
                create_pr=create_pr,
                token=token,
            )
        except _network_errors() as err:
            first = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise ConnectionError(
                f"cannot reach the Hugging Face Hub to push {repo_id!r} ({first}); nothing "
                "was uploaded. Check the network connection (and a proxy, HTTPS_PROXY), unset "
                "HF_HUB_OFFLINE if it is set, and push again"
            ) from err


def _network_errors() -> tuple[type[BaseException], ...]:
    """The exceptions of a Hub that cannot be reached: offline mode, and the HTTP client's.

    huggingface_hub raises its HTTP client's own transport errors (httpx's, or the copy it
    ships as ``httpx2``), which are not ``OSError``: named here so they become one error.
    """
    errors: list[type[BaseException]] = [ConnectionError, TimeoutError]
    for module in ("httpx2", "httpx"):
        with contextlib.suppress(ImportError, AttributeError):  # not installed, or renamed
            errors.append(importlib.import_module(module).TransportError)
    return tuple(errors)
