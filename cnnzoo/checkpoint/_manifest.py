"""The training-state manifest: its tagged JSON encoding and the one decoder that reads it back.

Non-tensor values travel through a small tagged encoding (``{"__tensor__": name}``,
``{"__tuple__": [...]}``, ``{"__dict__": [[key, value], ...]}`` for non-string keys,
``{"__dtype__": "float32"}``, ``{"__device__": "cpu"}``), so optimizer and scheduler state dicts
round-trip exactly. A manifest is a file, and a file is input: the decoder builds only what the
format defines (dtypes from a fixed list, never ``getattr(torch, name)``), and
:func:`check_manifest` checks the type and range of every field before anything uses it.
"""

from __future__ import annotations

import numbers
from typing import Any

import torch

__all__ = ["Encoder", "check_component_keys", "check_manifest", "check_rng", "decode"]

MARKERS = ("__tensor__", "__tuple__", "__dict__", "__dtype__", "__device__")
# The dtypes a state dict can hold, by the name the encoder writes (str(dtype) without "torch.").
_DTYPES = {
    str(dtype).removeprefix("torch."): dtype
    for dtype in (
        torch.float16,
        torch.bfloat16,
        torch.float32,
        torch.float64,
        torch.complex64,
        torch.complex128,
        torch.uint8,
        torch.int8,
        torch.int16,
        torch.int32,
        torch.int64,
        torch.bool,
    )
}
_DEVICE_TYPES = ("cpu", "cuda", "mps", "xpu", "meta")
# Deeper nesting than any optimizer or scheduler state is not a state cnnzoo wrote.
_MAX_DEPTH = 64
_MAX_EPOCH = 10_000_000


class Encoder:
    """Turns nested state into JSON-able values, moving tensors into a flat dict."""

    def __init__(self) -> None:
        self.tensors: dict[str, torch.Tensor] = {}

    def encode(self, obj: Any, where: str) -> Any:
        """The JSON-able form of ``obj`` (``where`` names it in errors and tensor names).

        Raises:
            ValueError: ``obj`` holds something that cannot be stored without pickle.
        """
        if isinstance(obj, torch.Tensor):
            name = f"{where.split('.')[0]}/{len(self.tensors)}"
            self.tensors[name] = obj
            return {"__tensor__": name}
        if obj is None or isinstance(obj, (bool, str)):
            return obj
        if isinstance(obj, numbers.Integral):  # also numpy integers
            return int(obj)
        if isinstance(obj, numbers.Real):
            return float(obj)
        if isinstance(obj, torch.dtype) and str(obj).removeprefix("torch.") in _DTYPES:
            return {"__dtype__": str(obj).removeprefix("torch.")}
        if isinstance(obj, torch.device):
            return {"__device__": str(obj)}
        if isinstance(obj, list):
            return [self.encode(v, f"{where}[{i}]") for i, v in enumerate(obj)]
        if isinstance(obj, tuple):  # also torch.Size
            return {"__tuple__": [self.encode(v, f"{where}[{i}]") for i, v in enumerate(obj)]}
        if isinstance(obj, dict):
            if all(isinstance(k, str) for k in obj) and not set(obj) & set(MARKERS):
                return {k: self.encode(v, f"{where}.{k}") for k, v in obj.items()}
            return {
                "__dict__": [
                    [self.encode(k, f"{where}<key>"), self.encode(v, f"{where}[{k!r}]")]
                    for k, v in obj.items()
                ]
            }
        if type(obj).__module__ == "numpy" and hasattr(obj, "tolist"):  # ndarray
            return self.encode(obj.tolist(), where)
        raise ValueError(
            f"cannot store {where} = {obj!r} ({type(obj).__name__}) in a training state: only "
            "tensors, numbers, strings, booleans, None, lists, tuples, dicts, dtypes and "
            "devices can be saved without pickle"
        )


def decode(obj: Any, tensors: dict[str, torch.Tensor], where: str, depth: int = 0) -> Any:
    """The value ``Encoder.encode`` wrote, rebuilt from the manifest's JSON.

    Only the format's own tags are understood, each with the value type it defines; a dict
    holding a tag next to other keys is refused rather than read as a plain dict.

    Raises:
        ValueError: Anything the format does not define (the message says what and where).
    """
    if depth > _MAX_DEPTH:
        raise ValueError(f"{where} is nested deeper than any saved state")
    if obj is None or isinstance(obj, (bool, str, int)):
        return obj
    if isinstance(obj, float):
        return obj
    if isinstance(obj, list):
        return [decode(v, tensors, f"{where}[{i}]", depth + 1) for i, v in enumerate(obj)]
    if not isinstance(obj, dict):
        raise ValueError(f"{where} holds a {type(obj).__name__}")
    tags = [key for key in obj if key in MARKERS]
    if not tags:
        return {k: decode(v, tensors, f"{where}.{k}", depth + 1) for k, v in obj.items()}
    if len(obj) != 1:
        raise ValueError(f"{where} mixes the tag {tags[0]!r} with other keys")
    ((tag, value),) = obj.items()
    return _decode_tag(tag, value, tensors, where, depth)


def _decode_tag(
    tag: str, value: Any, tensors: dict[str, torch.Tensor], where: str, depth: int
) -> Any:
    if tag == "__tensor__":
        if not isinstance(value, str) or value not in tensors:
            raise ValueError(f"{where} names tensor {value!r}, which the tensor file lacks")
        return tensors[value]
    if tag == "__tuple__" and isinstance(value, list):
        return tuple(decode(v, tensors, f"{where}[{i}]", depth + 1) for i, v in enumerate(value))
    if tag == "__dict__" and isinstance(value, list):
        result = {}
        for i, pair in enumerate(value):
            if not isinstance(pair, list) or len(pair) != 2:
                raise ValueError(f"{where} entry {i} is not a [key, value] pair")
            key = decode(pair[0], tensors, f"{where}<key {i}>", depth + 1)
            key = tuple(key) if isinstance(key, list) else key
            if not isinstance(key, (str, int, float, bool, tuple)) and key is not None:
                raise ValueError(f"{where} entry {i} has a key of type {type(key).__name__}")
            try:
                hash(key)
            except TypeError:  # a tuple holding lists or dicts
                raise ValueError(f"{where} entry {i} has a key that cannot be one") from None
            result[key] = decode(pair[1], tensors, f"{where}[{key!r}]", depth + 1)
        return result
    if tag == "__dtype__":
        if not isinstance(value, str) or value not in _DTYPES:
            raise ValueError(
                f"{where} names dtype {value!r}, which is not one of the dtypes a state holds "
                f"({', '.join(_DTYPES)})"
            )
        return _DTYPES[value]
    if tag == "__device__" and isinstance(value, str):
        kind = value.partition(":")[0]
        index = value.partition(":")[2]
        if kind in _DEVICE_TYPES and (not index or (index.isdigit() and len(index) < 4)):
            return torch.device(value)
        raise ValueError(f"{where} names device {value!r}, which is not a device name")
    raise ValueError(f"{where} holds the tag {tag!r} with a {type(value).__name__}")


# -- the manifest's fields ------------------------------------------------------------------------
def check_manifest(manifest: dict[str, Any]) -> str | None:
    """What is wrong with a committed manifest's fields, or None when every field is sound.

    Checks the types and ranges a loader relies on: ``epoch`` an integer in range, the
    ``model``, ``optimizer``, ``scheduler`` and ``scaler`` records, the history's shape,
    ``extra`` and ``settings`` objects.
    """
    epoch = manifest.get("epoch")
    if not isinstance(epoch, int) or not _is_int(epoch) or not 0 <= epoch <= _MAX_EPOCH:
        return f"its epoch is {epoch!r}, not an epoch number (an integer >= 0)"
    model = manifest.get("model")
    if not isinstance(model, dict):
        return "its model record is not a JSON object"
    for key in ("config", "data_config"):
        if not isinstance(model.get(key), dict | None):
            return f"its model {key} is not a JSON object"
    for key, optional in (("optimizer", False), ("scheduler", True), ("scaler", True)):
        record = manifest.get(key)
        if record is None and optional:
            continue
        if (
            not isinstance(record, dict)
            or set(record) != {"class", "state"}
            or not isinstance(record["class"], str)
            or not isinstance(record["state"], dict)
        ):
            return f'its {key} record is not {{"class": name, "state": {{...}}}}'
    for key in ("history", "extra", "rng"):
        if not isinstance(manifest.get(key), dict):
            return f"its {key} is not a JSON object"
    if not isinstance(manifest.get("settings", {}), dict | None):
        return "its settings are not a JSON object"
    return _check_history(manifest["history"], epoch)


def _check_history(history: dict[str, Any], epoch: int) -> str | None:
    lengths = set()
    for name, values in history.items():
        if not isinstance(values, list) or not all(_is_number(v) for v in values):
            return f"its history of {name!r} is not a list of numbers"
        lengths.add(len(values))
    if len(lengths) > 1 or any(n > epoch + 1 for n in lengths):
        return f"its history does not hold one value per epoch up to epoch {epoch}"
    return None


def check_rng(state: Any) -> str | None:
    """What is wrong with a decoded RNG state, or None; checked on throwaway generators."""
    import random

    if not isinstance(state, dict) or not {"torch", "python"} <= set(state):
        return "its RNG state lacks the torch or Python generator"
    torch_state = state["torch"]
    expected = torch.get_rng_state()
    if (
        not isinstance(torch_state, torch.Tensor)
        or torch_state.dtype != torch.uint8
        or torch_state.shape != expected.shape
    ):
        return "its torch RNG state is not a generator state"
    try:
        random.Random().setstate(state["python"])
    except (TypeError, ValueError, OverflowError):
        return "its Python RNG state is not a generator state"
    cuda = state.get("cuda")
    if cuda is not None and (
        not isinstance(cuda, list)
        or not all(isinstance(t, torch.Tensor) and t.dtype == torch.uint8 for t in cuda)
    ):
        return "its CUDA RNG state is not a list of generator states"
    numpy_state = state.get("numpy")
    if numpy_state is not None:
        import numpy

        try:
            name, keys, position, has_gauss, cached = numpy_state
            numpy.random.RandomState().set_state(
                (name, numpy.asarray(keys, dtype=numpy.uint32), position, has_gauss, cached)
            )
        except (TypeError, ValueError, OverflowError):
            return "its NumPy RNG state is not a generator state"
    return None


def check_component_keys(obj: Any, saved: dict[str, Any], what: str) -> str | None:
    """What in a saved optimizer, scheduler or scaler state the object would not know, or None.

    ``load_state_dict`` of a scheduler copies every key into the object's attributes, and an
    optimizer's takes its parameter groups as they are: a key the object's own state does not
    have is refused, as is a per-parameter value that is neither a tensor nor a number.
    """
    fresh = obj.state_dict()
    unknown = sorted(str(k) for k in set(saved) - set(fresh))
    if unknown:
        return f"its {what} state has keys {unknown} that a {type(obj).__name__} does not have"
    if what != "optimizer":
        for key, value in saved.items():  # a string where a number goes fails mid-training
            if not _same_kind(fresh[key], value):
                return f"its {what} state's {key!r} is {value!r}, not a value of its kind"
        return None
    groups, fresh_groups = saved.get("param_groups"), fresh.get("param_groups", [])
    if not isinstance(groups, list) or not all(isinstance(g, dict) for g in groups):
        return "its optimizer param_groups are not a list of groups"
    kinds = {k: v for g in fresh_groups for k, v in g.items()}
    for i, group in enumerate(groups):
        extra = sorted(str(k) for k in set(group) - set(kinds))
        if extra:
            return f"its optimizer param_groups[{i}] has keys {extra} a {type(obj).__name__} lacks"
        for key, value in group.items():
            if not _same_kind(kinds[key], value):
                return f"its optimizer param_groups[{i}] {key!r} is {value!r}, not of its kind"
    state = saved.get("state")
    if not isinstance(state, dict):
        return "its optimizer state is not a mapping of parameters to their state"
    for index, values in state.items():
        if not isinstance(values, dict) or not all(map(_is_state_value, values.values())):
            return f"its optimizer state of parameter {index!r} is not tensors and numbers"
    return _check_state_shapes(obj, groups, state)


def _check_state_shapes(
    obj: Any, groups: list[dict[str, Any]], state: dict[Any, Any]
) -> str | None:
    """Moments shaped like their parameter: another shape fails inside the first step."""
    params = [p for group in obj.param_groups for p in group["params"]]
    ids = [i for group in groups for i in group.get("params", [])]
    if len(ids) != len(params):
        return None  # torch's own load_state_dict names the mismatch of the groups
    by_id = dict(zip(ids, params, strict=True))
    for index, values in state.items():
        param = by_id.get(index)
        if param is None:
            return f"its optimizer state names parameter {index!r}, which no group holds"
        for name, value in values.items():
            if isinstance(value, torch.Tensor) and value.dim() > 0 and value.shape != param.shape:
                return (
                    f"its optimizer state {name!r} of parameter {index!r} has shape "
                    f"{tuple(value.shape)}, its parameter {tuple(param.shape)}"
                )
    return None


def _same_kind(fresh: Any, saved: Any) -> bool:
    """Whether a saved scheduler value has the kind of the fresh one (numbers, text, lists)."""
    if fresh is None or saved is None:
        return True  # optional values (a last lr not computed yet)
    if _is_number(fresh) or isinstance(fresh, bool):
        return _is_number(saved) or isinstance(saved, bool)
    if isinstance(fresh, str):
        return isinstance(saved, str)
    if isinstance(fresh, list | tuple):
        return isinstance(saved, list | tuple)
    if isinstance(fresh, dict):
        return isinstance(saved, dict)
    return True


def _is_state_value(value: Any) -> bool:
    """A per-parameter optimizer value: a tensor, a number, None, or a list of those (L-BFGS)."""
    if isinstance(value, list | tuple):
        return all(map(_is_state_value, value))
    return value is None or isinstance(value, torch.Tensor) or _is_number(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)  # NaN is a value
