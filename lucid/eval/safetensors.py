"""``.safetensors`` inputs, read in chunks of rows through a memory map, never loaded whole.

The format (Hugging Face's) is an 8-byte little-endian header length, a JSON
header naming every tensor's dtype, shape and byte range, then the raw
buffers, C order, little-endian; nothing in it is code. The header is parsed
here with :mod:`json` and checked before any data byte is read, so lucid needs
no extra package for it. bfloat16 (the usual dtype of logit dumps) has no numpy
dtype: its 16 bits are the high half of a float32, so it is widened exactly by
shifting them left by 16.
"""
import json
import math
import os

import numpy as np

#: safetensors dtype names lucid reads, and the numpy dtype of their bytes.
DTYPES = {"F16": np.dtype("<f2"), "BF16": np.dtype("<u2"), "F32": np.dtype("<f4"),
          "F64": np.dtype("<f8"), "I8": np.dtype("i1"), "U8": np.dtype("u1"),
          "I16": np.dtype("<i2"), "U16": np.dtype("<u2"), "I32": np.dtype("<i4"),
          "U32": np.dtype("<u4"), "I64": np.dtype("<i8"), "U64": np.dtype("<u8")}
# A header larger than this is not a header (the format's own readers cap it too).
MAX_HEADER_BYTES = 100 * 2**20


class SafetensorsError(ValueError):
    """A file that is not a readable safetensors file, or lacks the tensor asked for."""


def looks_like_safetensors(path, first_bytes):
    """True for a ``.safetensors`` name, or a length prefix followed by ``{``."""
    if os.fspath(path).endswith(".safetensors"):
        return True
    if len(first_bytes) < 9 or first_bytes[8:9] != b"{":
        return False
    return 2 <= int.from_bytes(first_bytes[:8], "little") <= MAX_HEADER_BYTES


def widen_bfloat16(bits):
    """float32 values of bfloat16 ``bits`` (uint16), exactly: the bits shifted left by 16."""
    wide = bits.astype(np.uint32)
    wide <<= 16  # in place: no second temporary of the chunk's size
    return wide.view(np.float32)


class SafetensorsTensor:
    """One tensor of a safetensors file: its dtype, shape, and rows read on demand.

    ``dtype`` is the dtype :meth:`read` returns (float32 for bfloat16);
    ``stored`` names the file's dtype.
    """

    def __init__(self, path, key, label):
        self.path, self.label = path, label
        header, data_start = _read_header(path, label)
        name = _choose(header, key, label)
        entry = header[name]
        self.label = f"{label} (key {name!r})"
        self.stored = entry.get("dtype")
        if self.stored not in DTYPES:
            raise SafetensorsError(f"{self.label} has dtype {self.stored!r}; lucid reads "
                                   f"{', '.join(DTYPES)}")
        self.file_dtype = DTYPES[self.stored]
        self.dtype = np.dtype(np.float32) if self.stored == "BF16" else self.file_dtype
        self.shape = _shape(entry, self.label)
        if not self.shape:
            raise SafetensorsError(f"{self.label} is a 0-d tensor; expected rows (N, ...)")
        begin, end = _offsets(entry, self.label)
        self.row_bytes = math.prod(self.shape[1:]) * self.file_dtype.itemsize
        if end - begin != self.row_bytes * self.shape[0]:
            raise SafetensorsError(f"{self.label}: its byte range holds {end - begin} bytes, "
                                   f"its shape and dtype need {self.row_bytes * self.shape[0]}")
        self.offset = data_start + begin
        if os.path.getsize(path) < data_start + end:
            raise SafetensorsError(f"{self.label} is truncated: its header promises "
                                   f"{data_start + end} bytes, the file has "
                                   f"{os.path.getsize(path)}")

    def read(self, start, stop):
        """Rows ``start:stop`` of the first axis, through a fresh map of just those bytes."""
        rows = np.memmap(self.path, dtype=self.file_dtype, mode="r",
                         offset=self.offset + start * self.row_bytes,
                         shape=(stop - start, *self.shape[1:]))
        return widen_bfloat16(rows) if self.stored == "BF16" else rows


def _read_header(path, label):
    with open(path, "rb") as f:
        prefix = f.read(8)
        if len(prefix) < 8:
            raise SafetensorsError(f"{label} is too short to be a safetensors file")
        size = int.from_bytes(prefix, "little")
        if not 2 <= size <= MAX_HEADER_BYTES:
            raise SafetensorsError(f"{label} is not a safetensors file (header length {size})")
        text = f.read(size)
    if len(text) < size:
        raise SafetensorsError(f"{label} is truncated inside its safetensors header")
    try:
        header = json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise SafetensorsError(f"{label} has no valid safetensors header "
                               f"({' '.join(str(error).split())})") from None
    if not isinstance(header, dict):
        raise SafetensorsError(f"{label}: its safetensors header is not a JSON object")
    header.pop("__metadata__", None)
    return header, 8 + size


def _choose(header, key, label):
    names = [name for name, entry in header.items() if isinstance(entry, dict)]
    held = ", ".join(repr(n) for n in names) or "no tensors"
    if key is None:
        if len(names) == 1:
            return names[0]
        raise SafetensorsError(f"{label} holds {held}; choose one with --key")
    if key not in names:
        raise SafetensorsError(f"{label} has no tensor {key!r}; it holds {held}")
    return key


def _shape(entry, label):
    shape = entry.get("shape")
    if (not isinstance(shape, list) or not all(isinstance(n, int) and not isinstance(n, bool)
                                               and n >= 0 for n in shape)):
        raise SafetensorsError(f"{label}: shape {shape!r} is not a list of sizes")
    return tuple(shape)


def _offsets(entry, label):
    offsets = entry.get("data_offsets")
    if (not isinstance(offsets, list) or len(offsets) != 2
            or not all(isinstance(n, int) and not isinstance(n, bool) for n in offsets)
            or not 0 <= offsets[0] <= offsets[1]):
        raise SafetensorsError(f"{label}: data_offsets {offsets!r} are not a byte range")
    return offsets
