"""One byte layout for a safetensors file: the same tensors and metadata give the same bytes.

The safetensors library lays the tensor data out in a fixed order (by dtype, then name) but
serialises its header's ``__metadata__`` from a Rust ``HashMap``, whose order changes from one
process to the next; so two saves of identical weights differed in their header bytes and a
published sha256 could not be reproduced. :func:`canonicalise_header` rewrites a freshly written
file's header with ``__metadata__`` first (keys sorted) and the tensor entries in the order of
their data, leaving the tensor bytes untouched.
"""

from __future__ import annotations

import json
import os
import struct

__all__ = ["canonical_header", "canonicalise_header"]


def canonical_header(raw: bytes) -> bytes:
    """The header JSON ``raw`` in the fixed layout, unpadded.

    ``__metadata__`` comes first with its keys sorted, then each tensor's entry (keys sorted) in
    the order of its data offsets: the order the data itself is stored in.
    """
    header = json.loads(raw.decode("utf-8"))
    metadata = header.pop("__metadata__", None)
    ordered: dict[str, object] = {}
    if metadata is not None:
        ordered["__metadata__"] = dict(sorted(metadata.items()))
    for name in sorted(header, key=lambda n: (header[n]["data_offsets"], n)):
        ordered[name] = dict(sorted(header[name].items()))
    return json.dumps(ordered, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def canonicalise_header(path: str | os.PathLike) -> None:
    """Rewrite the header of the safetensors file at ``path`` in the fixed layout, in place.

    The header keeps its length (padded with spaces, as safetensors pads it), so only its bytes
    change. The fixed layout is never longer: it holds the same JSON values, compact, and
    escapes no character that safetensors' own serialiser leaves unescaped.

    Raises:
        RuntimeError: The fixed layout would not fit (a file not fresh from safetensors).
    """
    with open(path, "rb+") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        header = canonical_header(f.read(length))
        if len(header) > length:
            raise RuntimeError(
                f"cannot rewrite the header of {str(path)!r} in place: it would grow from "
                f"{length} to {len(header)} bytes"
            )
        f.seek(8)
        f.write(header + b" " * (length - len(header)))
