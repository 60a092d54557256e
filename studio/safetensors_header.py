"""A ``.safetensors`` file's header, read without loading a tensor, and pickles told apart from it.

Every file people bring (checkpoints, LoRAs) is recognised from this header alone: a little-endian
u64 length, a JSON table of tensors (dtype, shape, byte offsets into the data section) and an
optional ``__metadata__`` table of strings. Pickles (``.ckpt``, ``.pt``, torch zip files) are
never opened: unpickling runs whatever code the file carries.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin", ".pkl", ".pickle")
MAX_HEADER_BYTES = 100 * 1024 * 1024  # safetensors' own limit on the JSON header
_ZIP_MAGIC = b"PK\x03\x04"  # torch.save's zip container (a pickle inside)
ITEM_BYTES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1,
    "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
    "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8,
}  # fmt: skip

Problem = Literal["not_safetensors", "header_cut", "data_cut", "malformed"]


class HeaderError(ValueError):
    """Why the bytes are not a whole safetensors file; each caller words it for its own reader."""

    def __init__(self, problem: Problem, detail: str) -> None:
        super().__init__(detail)
        self.problem = problem
        self.detail = detail


@dataclass(frozen=True)
class TensorInfo:
    dtype: str
    shape: tuple[int, ...]
    start: int  # offsets into the data section
    end: int


@dataclass(frozen=True)
class Header:
    tensors: dict[str, TensorInfo]
    metadata: dict[str, str]
    length: int  # the JSON header's bytes: the data section starts at 8 + length

    @property
    def data_bytes(self) -> int:
        return max((info.end for info in self.tensors.values()), default=0)


def is_pickle(name: str, start: bytes) -> bool:
    """A pickle by its file name, or by its first bytes (torch's zip, or a bare protocol 2-5 pickle).

    A safetensors header always starts at byte 8; its little-endian length may well begin with
    0x80 (a pickle's first byte), so that byte alone proves nothing.
    """
    if name.lower().endswith(PICKLE_SUFFIXES):
        return True
    if start[8:9] == b"{":
        return False
    bare_pickle = start[:1] == b"\x80" and start[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05")
    return start.startswith(_ZIP_MAGIC) or bare_pickle


def read_header(data: bytes, strict: bool = True) -> Header:
    """The header of a whole file held in memory; ``strict`` also checks every tensor's byte size."""
    return _parse(data[:8], lambda length: data[8 : 8 + length], len(data), strict)


def read_file_header(path: Path, strict: bool = False) -> Header:
    """The header of a file on disk, reading only the header (OSError if it cannot be read)."""
    size = path.stat().st_size
    with path.open("rb") as file:
        return _parse(file.read(8), file.read, size, strict)


def _parse(prefix: bytes, read: Callable[[int], bytes], size: int, strict: bool) -> Header:
    if len(prefix) < 8:
        raise HeaderError("not_safetensors", f"it is only {size} bytes long")
    (length,) = struct.unpack("<Q", prefix)
    if length < 2 or length > MAX_HEADER_BYTES:
        raise HeaderError("not_safetensors", "its header length makes no sense")
    raw = read(length)
    if len(raw) < length:
        if raw[:1] == b"{":  # a header that starts right but is cut off
            raise HeaderError("header_cut", "its header is cut short")
        raise HeaderError("not_safetensors", "its header length is longer than the file")
    try:
        decoded = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        raise HeaderError("not_safetensors", "its header is not JSON") from None
    if not isinstance(decoded, dict):
        raise HeaderError("not_safetensors", "its header is not a table")
    raw_metadata = decoded.pop("__metadata__", None) or {}
    tensors: dict[str, TensorInfo] = {}
    for name, entry in decoded.items():
        try:
            dtype, shape = str(entry["dtype"]), tuple(int(d) for d in entry["shape"])
            start, end = (int(x) for x in entry["data_offsets"])
            count = 1
            for dim in shape:
                count *= dim
            fits = 0 <= start <= end and (not strict or end - start == count * ITEM_BYTES[dtype])
        except (KeyError, TypeError, ValueError):
            raise HeaderError("malformed", f"tensor {str(name)[:80]!r} is malformed") from None
        if not fits:
            raise HeaderError("malformed", f"tensor {str(name)[:80]!r} has impossible offsets")
        tensors[str(name)] = TensorInfo(dtype, shape, start, end)
    metadata = {str(k): str(v) for k, v in raw_metadata.items()} if isinstance(raw_metadata, dict) else {}
    header = Header(tensors, metadata, length)
    if size < 8 + length + header.data_bytes:
        raise HeaderError(
            "data_cut", f"it has {size} bytes of the {8 + length + header.data_bytes} its header describes"
        )
    return header


@dataclass(frozen=True)
class Safetensors:
    tensors: dict[str, TensorInfo]
    metadata: dict[str, str]
    body: bytes

    def raw(self, name: str) -> bytes:
        info = self.tensors[name]
        return self.body[info.start : info.end]


def write_safetensors(
    tensors: dict[str, tuple[str, tuple[int, ...], bytes]], metadata: dict[str, str]
) -> bytes:
    """A safetensors file, names and metadata sorted so the same content always gives the same bytes."""
    header: dict[str, object] = {"__metadata__": dict(sorted(metadata.items()))} if metadata else {}
    chunks: list[bytes] = []
    offset = 0
    for name in sorted(tensors):
        dtype, shape, raw = tensors[name]
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(chunks)
