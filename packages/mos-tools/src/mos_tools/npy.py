"""Read the ``.npy`` files audio-metrics writes, without NumPy (mos-tools needs no stack)."""

from __future__ import annotations

import ast
import struct
from pathlib import Path

from .errors import MosError

_FORMATS = {"<f4": ("f", 4), "<f8": ("d", 8), "|u1": ("B", 1), "<i8": ("q", 8)}


def read_matrix(path: Path) -> list[list[float]]:
    """A 2-D C-order array of little-endian floats as a list of rows."""
    data = path.read_bytes()
    if data[:6] != b"\x93NUMPY":
        raise MosError(f"{path}: not a .npy file")
    major = data[6]
    header_len = struct.unpack(
        "<H" if major == 1 else "<I", data[8:10] if major == 1 else data[8:12]
    )[0]
    start = 10 if major == 1 else 12
    header = ast.literal_eval(data[start : start + header_len].decode("latin1"))
    descr, shape, fortran = header["descr"], header["shape"], header["fortran_order"]
    if descr not in _FORMATS or fortran or len(shape) != 2:
        raise MosError(
            f"{path}: expected a 2-D C-order float array (samples x classes); got dtype "
            f"{descr}, shape {shape}"
        )
    code, size = _FORMATS[descr]
    rows, cols = shape
    body = data[start + header_len :]
    if len(body) < rows * cols * size:
        raise MosError(f"{path}: truncated ({len(body)} bytes for shape {shape})")
    flat = struct.unpack(f"<{rows * cols}{code}", body[: rows * cols * size])
    return [list(map(float, flat[r * cols : (r + 1) * cols])) for r in range(rows)]


def write_matrix(path: Path, rows: list[list[float]]) -> None:
    """Write float64 rows as ``.npy`` (version 1.0), for tests and examples."""
    shape = (len(rows), len(rows[0]) if rows else 0)
    header = f"{{'descr': '<f8', 'fortran_order': False, 'shape': {shape}, }}"
    header += " " * ((64 - (10 + len(header) + 1) % 64) % 64) + "\n"
    flat = [x for row in rows for x in row]
    path.write_bytes(
        b"\x93NUMPY\x01\x00"
        + struct.pack("<H", len(header))
        + header.encode("latin1")
        + struct.pack(f"<{len(flat)}d", *flat)
    )
