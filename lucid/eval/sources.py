"""The evaluation job's inputs: ``.npy``, ``.npz`` and ``.safetensors`` arrays read in chunks of rows.

Files are data, never code: a header is parsed (numpy's own literal parser)
and checked before a byte of data is read, and an array of Python objects is
refused outright, because unpickling one could run code.

Memory stays bounded by the chunk size, not the file size:

* a C-order ``.npy`` file is memory-mapped one window of rows at a time, and
  each window is unmapped when the next is read, so the pages read so far do
  not pile up in the process's resident memory;
* a C-order member of an ``.npz`` archive (compressed or not) is streamed
  through :mod:`zipfile`, one chunk of rows at a time;
* a tensor of a ``.safetensors`` file is mapped one window of rows at a time
  (:mod:`lucid.eval.safetensors`), bfloat16 widened exactly to float32;
* a Fortran-order array cannot be cut into row chunks on disk: a ``.npy`` file
  is memory-mapped whole, an ``.npz`` member is loaded whole.
"""
import math
import os
import zipfile
import zlib

import numpy as np

from lucid.eval.safetensors import SafetensorsError, SafetensorsTensor, looks_like_safetensors

NPY_MAGIC = b"\x93NUMPY"
ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")
# A pickle of protocol 2 or later starts with the PROTO opcode.
PICKLE_MAGIC = b"\x80"
# What zipfile raises for a damaged, encrypted or oddly compressed member.
_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError,
               RuntimeError)


class InputError(ValueError):
    """A problem with an evaluation job's input files or options, told in one line.

    Examples
    --------
    >>> import numpy as np
    >>> from lucid.eval import InputError, evaluate
    >>> try:
    ...     evaluate(np.zeros((2, 3)), np.zeros((2, 4)))
    ... except InputError as error:
    ...     print("InputError:", error)
    InputError: ...
    """


def open_array(source, key=None, role="input"):
    """Open ``source`` (a path or a numpy array) for reading in chunks of rows.

    ``role`` ("student", "teacher") starts every error message; ``"labels"``
    opens integer class labels of any number of dimensions, any other role
    real numbers of at least two (rows and classes). The returned object has
    ``shape``, ``dtype``, ``label``, ``read(start, stop)`` (rows
    ``start:stop`` of the first axis), ``close()`` and ``origin``: the
    arguments that open it again elsewhere, or None for an array.
    """
    if isinstance(source, np.ndarray):
        opened = _InMemory(source, _checked(source.shape, source.dtype, f"{role} array"))
    else:
        opened = _open_file(os.fspath(source), key, role)
    try:
        _check_contents(opened, role)
    except BaseException:
        opened.close()
        raise
    return opened


def _open_file(path, key, role):
    label = f"{role} {path!r}"
    magic = _read_magic(path, label)
    if magic.startswith(NPY_MAGIC):
        if key is not None:
            raise InputError(f"{label} is a .npy file, which holds one array; a key "
                             f"({key!r}) is for .npz and .safetensors files")
        opened = _open_npy(path, label)
    elif magic.startswith(ZIP_MAGICS):
        opened = _open_npz(path, key, label)
    elif looks_like_safetensors(path, magic):
        try:
            opened = _SafetensorsWindows(SafetensorsTensor(path, key, label))
        except (SafetensorsError, OSError) as error:
            raise InputError(_one_line(error)) from None
    elif magic.startswith(PICKLE_MAGIC):
        raise InputError(f"{label} is a Python pickle; it is refused, because loading it "
                         "could run code (save arrays with numpy.save or safetensors)")
    else:
        raise InputError(f"{label} is neither a .npy file, a .npz archive nor a "
                         ".safetensors file")
    # What another process (a Dask worker) needs to open the same array itself.
    opened.origin = (path, key, role)
    return opened


def _check_contents(opened, role):
    """Real numbers in rows of classes, or (for ``role == "labels"``) integers of any shape."""
    if role == "labels":
        if opened.dtype.kind not in "iu":
            raise InputError(f"{opened.label} has dtype {opened.dtype}; labels are integer "
                             "class indices")
        return
    if opened.dtype.kind not in "fiu":
        raise InputError(f"{opened.label} has dtype {opened.dtype}; expected real numbers "
                         "(float or integer)")
    if len(opened.shape) < 2:
        raise InputError(f"{opened.label} has shape {tuple(opened.shape)}; expected (N, C) or "
                         "(N, ..., C), at least 2 dimensions")


class _Header:
    """What an .npy header promises, checked: shape, dtype, order, where the data starts."""

    def __init__(self, shape, dtype, fortran_order, label, data_offset=0):
        self.shape = tuple(shape)
        self.dtype = dtype
        self.fortran_order = fortran_order
        self.label = label
        self.data_offset = data_offset
        self.row_bytes = math.prod(self.shape[1:]) * dtype.itemsize


def _checked(shape, dtype, label, fortran_order=False, data_offset=0):
    if dtype.hasobject:
        raise InputError(f"{label} holds Python objects (dtype {dtype}); pickled data is "
                         "refused because loading it could run code")
    if dtype.kind == "V" and dtype.itemsize == 2 and dtype.fields is None:
        # What ml_dtypes' bfloat16 becomes in a .npy file: raw 2-byte records.
        raise InputError(f"{label} holds 2-byte raw values (dtype {dtype}), which is how "
                         ".npy stores bfloat16; save bfloat16 as .safetensors instead")
    if not shape:
        raise InputError(f"{label} has shape (); expected (N, C) or (N, ..., C), at least "
                         "2 dimensions (labels: (N, ...))")
    if 0 in shape:
        raise InputError(f"{label} has shape {tuple(shape)}; there is nothing to evaluate")
    return _Header(shape, dtype, fortran_order, label, data_offset)


def _read_magic(path, label):
    try:
        with open(path, "rb") as f:
            return f.read(16)
    except FileNotFoundError:
        raise InputError(f"{label}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{label} is a directory, not a file") from None
    except OSError as error:
        raise InputError(f"{label}: cannot read it ({error.strerror or error})") from None


_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0,
                   (2, 0): np.lib.format.read_array_header_2_0}


def _read_header(fp, label):
    """Parse an .npy header from ``fp``, leaving it at the first data byte."""
    try:
        version = np.lib.format.read_magic(fp)
        reader = _HEADER_READERS.get(version)
        if reader is not None:
            shape, fortran_order, dtype = reader(fp)
    except (ValueError, *_ZIP_ERRORS) as error:
        raise InputError(f"{label} has no valid .npy header ({_one_line(error)})") from None
    if reader is None:
        # Version 3.0 only adds UTF-8 field names of structured dtypes, refused anyway.
        raise InputError(f"{label} uses .npy format version {version[0]}.{version[1]}; "
                         "lucid.eval reads 1.0 and 2.0")
    # numpy's parser accepts any int, bools and negative ones included.
    if any(isinstance(n, bool) or not isinstance(n, int) or n < 0 for n in shape):
        raise InputError(f"{label} has no valid .npy header (shape {shape!r}: dimensions "
                         "must be integers >= 0)")
    return _checked(shape, dtype, label, fortran_order, fp.tell())


def _check_size(header, size):
    expected = header.data_offset + header.shape[0] * header.row_bytes
    if size < expected:
        raise InputError(f"{header.label} is truncated: its header promises {expected} bytes, "
                         f"it has {size}")


def _open_npy(path, label):
    with open(path, "rb") as f:
        header = _read_header(f, label)
    _check_size(header, os.path.getsize(path))
    if header.fortran_order:
        return _InMemory(np.load(path, mmap_mode="r", allow_pickle=False), header)
    return _NpyWindows(path, header)


def _open_npz(path, key, label):
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        raise InputError(f"{label} is not a readable .npz archive ({_one_line(error)})") from None
    try:
        member = _member_name(archive, key, label)
        label = f"{label} (key {member[:-4]!r})"
        stream = _open_member(archive, member, label)
        header = _read_header(stream, label)
        _check_size(header, archive.getinfo(member).file_size)
        if header.fortran_order:
            stream.close()
            array = _read_whole_member(archive, member, label)
            archive.close()
            return _InMemory(array, header)
        return _NpzStream(archive, stream, header)
    except BaseException:
        archive.close()
        raise


def _open_member(archive, member, label):
    try:
        return archive.open(member)
    except _ZIP_ERRORS as error:
        raise InputError(f"{label}: cannot open it ({_one_line(error)})") from None


def _read_whole_member(archive, member, label):
    try:
        with archive.open(member) as whole:
            return np.lib.format.read_array(whole, allow_pickle=False)
    except (*_ZIP_ERRORS, ValueError) as error:
        raise InputError(f"{label}: cannot read it ({_one_line(error)})") from None


def _member_name(archive, key, label):
    keys = [name[:-4] for name in archive.namelist() if name.endswith(".npy")]
    if not keys and any(name.endswith("data.pkl") for name in archive.namelist()):
        raise InputError(f"{label} is a torch.save file (a pickle in a zip archive); it is "
                         "refused, because loading it could run code (save the tensor with "
                         "safetensors or numpy.save)")
    if key is None:
        if len(keys) == 1:
            return keys[0] + ".npy"
        held = ", ".join(repr(k) for k in keys) or "no arrays"
        raise InputError(f"{label} holds {held}; choose one with --key")
    if key not in keys:
        held = ", ".join(repr(k) for k in keys) or "no arrays"
        raise InputError(f"{label} has no array {key!r}; it holds {held}")
    return key + ".npy"


def _one_line(error):
    return " ".join(str(error).split()) or type(error).__name__


class _Source:
    origin = None

    def close(self):
        pass


class _InMemory(_Source):
    """An array already in memory (or mapped whole): rows are slices of it."""

    def __init__(self, array, header):
        self.array = array
        self.shape, self.dtype, self.label = header.shape, header.dtype, header.label

    def read(self, start, stop):
        return self.array[start:stop]


class _NpyWindows(_Source):
    """A C-order .npy file mapped one window of rows at a time."""

    def __init__(self, path, header):
        self.path = path
        self.header = header
        self.shape, self.dtype, self.label = header.shape, header.dtype, header.label

    def read(self, start, stop):
        # A fresh map per window: when the caller drops it, its pages leave
        # this process's resident memory (they stay in the OS page cache).
        try:
            return np.memmap(self.path, dtype=self.dtype, mode="r",
                             offset=self.header.data_offset + start * self.header.row_bytes,
                             shape=(stop - start, *self.shape[1:]))
        except (OSError, ValueError) as error:
            raise InputError(f"{self.label}: cannot read rows {start}:{stop} "
                             f"({_one_line(error)})") from None


class _SafetensorsWindows(_Source):
    """A tensor of a .safetensors file, mapped one window of rows at a time."""

    def __init__(self, tensor):
        _checked(tensor.shape, tensor.dtype, tensor.label)
        self.tensor = tensor
        self.shape, self.dtype, self.label = tensor.shape, tensor.dtype, tensor.label

    def read(self, start, stop):
        try:
            return self.tensor.read(start, stop)
        except (OSError, ValueError) as error:
            raise InputError(f"{self.label}: cannot read rows {start}:{stop} "
                             f"({_one_line(error)})") from None


class _NpzStream(_Source):
    """A C-order .npz member read sequentially in chunks of rows (seeking when asked)."""

    def __init__(self, archive, stream, header):
        self.archive, self.stream, self.header = archive, stream, header
        self.shape, self.dtype, self.label = header.shape, header.dtype, header.label

    def read(self, start, stop):
        size = (stop - start) * self.header.row_bytes
        try:
            offset = self.header.data_offset + start * self.header.row_bytes
            if self.stream.tell() != offset:
                self.stream.seek(offset)
            data = self.stream.read(size)
        except _ZIP_ERRORS as error:
            raise InputError(f"{self.label}: cannot read rows {start}:{stop} "
                             f"({_one_line(error)})") from None
        if len(data) != size:
            raise InputError(f"{self.label} is truncated: rows {start}:{stop} are missing")
        return np.frombuffer(data, dtype=self.dtype).reshape(stop - start, *self.shape[1:])

    def close(self):
        self.stream.close()
        self.archive.close()
