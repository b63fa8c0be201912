"""IDX files (the format of the MNIST files), read and written strictly.

Layout: two zero bytes, a one-byte type code, a one-byte rank ``d``, then ``d``
big-endian unsigned 32-bit sizes, then the data in big-endian C order.

========  ===========  ===========
code      numpy dtype  bytes/item
========  ===========  ===========
``0x08``  uint8        1
``0x09``  int8         1
``0x0B``  int16        2
``0x0C``  int32        4
``0x0D``  float32      4
``0x0E``  float64      8
========  ===========  ===========

gzip is transparent: detected on read from its magic bytes, chosen on write by
a ``.gz`` suffix. Writes are atomic (see :mod:`encchain.atomic`) and gzip
output carries no timestamp, so the same array always gives the same bytes.

:func:`read_raw_ubyte` reads the original system's header-less ``*-ubyte.gz``
files, whose shape must be supplied.
"""

from __future__ import annotations

import gzip
import io
import math
import os
import zlib
from pathlib import Path

import numpy as np

from .atomic import atomic_write_bytes

__all__ = ["IDXError", "read_idx", "write_idx", "encode_idx", "read_raw_ubyte", "IDX_TYPES"]

#: type code -> big-endian numpy dtype
IDX_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODE_OF_KIND = {(dt.kind, dt.itemsize): code for code, dt in IDX_TYPES.items()}
_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 24  # decompress 16 MiB at a time: memory follows real data, not claims
# Level 1: a generated 20,000-image set (~80% non-zero pixels) gzips in 0.19 s to
# 5.0 MB at level 1, in 1.05 s to 4.6 MB at level 6; writing it is on every
# generation's path, so speed wins over 10% of disk.
_GZIP_LEVEL = 1
_NUMPY_MAX_RANK = 64  # IDX allows 255 dimensions, numpy arrays 64


class IDXError(ValueError):
    """A file is not valid IDX (or not what the caller said it is)."""

    def __init__(self, path: str | os.PathLike, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


def _open_payload(path: Path) -> tuple[io.BufferedIOBase, bool, int | None]:
    """Open ``path``; return (stream of the decoded bytes, gzipped?, raw size)."""
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise IDXError(path, "no such file") from None
    except IsADirectoryError:
        raise IDXError(path, "is a directory, not a file") from None
    size = os.fstat(f.fileno()).st_size
    if size == 0:
        f.close()
        raise IDXError(path, "empty file (0 bytes)")
    gz = f.read(2) == _GZIP_MAGIC
    f.seek(0)
    if gz:
        return gzip.GzipFile(fileobj=f, mode="rb"), True, None
    return f, False, size


def _read_exact(stream: io.BufferedIOBase, n: int, path: Path, what: str) -> bytes:
    """Read exactly ``n`` bytes in bounded chunks, or raise a clear IDXError."""
    chunks, got = [], 0
    try:
        while got < n:
            chunk = stream.read(min(_CHUNK, n - got))
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
    except (OSError, EOFError, zlib.error) as e:
        raise IDXError(path, f"corrupt gzip stream while reading {what}: {e}") from None
    if got < n:
        raise IDXError(path, f"truncated {what}: expected {n} bytes, found {got}")
    return b"".join(chunks)


def _has_more(stream: io.BufferedIOBase, path: Path) -> bool:
    try:
        return bool(stream.read(1))
    except (OSError, EOFError, zlib.error) as e:
        raise IDXError(path, f"corrupt gzip stream after the data: {e}") from None


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (plain or gzipped).

    Parameters
    ----------
    path : str or PathLike
        The file. gzip compression is detected from its first two bytes.

    Returns
    -------
    ndarray
        Shape as stored, dtype of the type code in native byte order
        (e.g. ``uint8`` for MNIST images).

    Raises
    ------
    IDXError
        Naming the file and the problem: empty file, bad magic, unknown type
        code, zero rank, truncated header or data, trailing bytes, corrupt
        gzip. Sizes are checked before any large allocation.
    """
    path = Path(path)
    stream, gz, raw_size = _open_payload(path)
    with stream:
        header = _read_exact(stream, 4, path, "header (magic number)")
        if header[0] != 0 or header[1] != 0:
            raise IDXError(
                path,
                f"bad magic number {header.hex()}: an IDX file starts with two zero bytes"
                + ("" if gz else " (if this is a header-less *-ubyte file, use read_raw_ubyte)"),
            )
        code, rank = header[2], header[3]
        if code not in IDX_TYPES:
            known = ", ".join(f"0x{c:02X}" for c in IDX_TYPES)
            raise IDXError(path, f"unknown type code 0x{code:02X} (known: {known})")
        if rank == 0:
            raise IDXError(path, "rank 0: an IDX file needs at least one dimension")
        dims_bytes = _read_exact(stream, 4 * rank, path, f"header ({rank} dimension sizes)")
        if rank > _NUMPY_MAX_RANK:
            raise IDXError(path, f"rank {rank}: valid IDX, but numpy arrays hold at most {_NUMPY_MAX_RANK} dimensions")
        shape = tuple(int(d) for d in np.frombuffer(dims_bytes, dtype=">u4"))
        dtype = IDX_TYPES[code]
        n_bytes = math.prod(shape) * dtype.itemsize
        header_bytes = 4 + 4 * rank
        if raw_size is not None:  # plain file: compare the claim with the size on disk first
            data_on_disk = raw_size - header_bytes
            if data_on_disk < n_bytes:
                raise IDXError(
                    path,
                    f"truncated data: shape {shape} of {dtype.name} needs {n_bytes} bytes, "
                    f"the file holds {data_on_disk}",
                )
            if data_on_disk > n_bytes:
                raise IDXError(
                    path,
                    f"{data_on_disk - n_bytes} trailing bytes after the data of shape {shape}",
                )
        data = _read_exact(stream, n_bytes, path, f"data (shape {shape}, {dtype.name})")
        if gz and _has_more(stream, path):
            raise IDXError(path, f"trailing bytes after the data of shape {shape}")
    return np.frombuffer(data, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="), copy=False).copy()


def encode_idx(array: np.ndarray, compress: bool = False) -> bytes:
    """The bytes of ``array`` as an IDX file; see :func:`write_idx`.

    With ``compress`` the bytes are gzipped exactly as :func:`write_idx` does
    for a ``.gz`` name (level 1, no timestamp), so callers can hash them first.
    """
    array = np.asarray(array)
    code = _CODE_OF_KIND.get((array.dtype.kind, array.dtype.itemsize))
    if code is None or array.dtype.kind == "b":
        raise IDXError(
            "<array>",
            f"dtype {array.dtype} has no IDX type code; use uint8, int8, int16, int32, float32 or float64",
        )
    if not 1 <= array.ndim <= 255:
        raise IDXError("<array>", f"rank {array.ndim}: IDX stores 1 to 255 dimensions")
    if any(d >= 2**32 for d in array.shape):
        raise IDXError("<array>", f"shape {array.shape}: each IDX size must be below 2**32")
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    payload = header + np.ascontiguousarray(array, dtype=IDX_TYPES[code]).tobytes()
    return gzip.compress(payload, compresslevel=_GZIP_LEVEL, mtime=0) if compress else payload


def write_idx(path: str | os.PathLike, array: np.ndarray) -> Path:
    """Write ``array`` as an IDX file, atomically.

    Parameters
    ----------
    path : str or PathLike
        Destination; a name ending in ``.gz`` is gzip-compressed (level 1, no
        timestamp, so equal arrays give equal bytes).
    array : ndarray
        dtype uint8, int8, int16, int32, float32 or float64; rank 1 to 64 (numpy's limit; IDX itself allows 255).

    Returns
    -------
    Path
        The path written.

    Raises
    ------
    IDXError
        For a dtype or rank IDX cannot store.
    """
    path = Path(path)
    try:
        payload = encode_idx(array, compress=path.suffix == ".gz")
    except IDXError as e:
        raise IDXError(path, e.problem) from None
    return atomic_write_bytes(path, payload)


def read_raw_ubyte(path: str | os.PathLike, shape: tuple[int, ...]) -> np.ndarray:
    """Read a header-less file of raw ``uint8`` pixels (the original's ``*-ubyte.gz``).

    Parameters
    ----------
    path : str or PathLike
        Plain or gzipped file of ``prod(shape)`` bytes and nothing else.
    shape : tuple of int
        The shape the bytes hold, e.g. ``(20000, 24, 24)``.

    Returns
    -------
    ndarray of uint8 with the given shape.

    Raises
    ------
    IDXError
        If the byte count does not fit the shape, or the gzip stream is corrupt.
    ValueError
        If ``shape`` has a non-positive size.
    """
    path = Path(path)
    shape = tuple(int(s) for s in shape)
    if not shape or any(s <= 0 for s in shape):
        raise ValueError(f"shape must be positive sizes, got {shape}")
    n_bytes = math.prod(shape)
    stream, gz, raw_size = _open_payload(path)
    with stream:
        if raw_size is not None and raw_size != n_bytes:
            raise IDXError(path, f"{raw_size} bytes do not fit shape {shape} ({n_bytes} bytes)")
        data = _read_exact(stream, n_bytes, path, f"raw pixels for shape {shape}")
        if gz and _has_more(stream, path):
            raise IDXError(path, f"more bytes than shape {shape} holds ({n_bytes} bytes)")
    return np.frombuffer(data, dtype=np.uint8).reshape(shape).copy()
