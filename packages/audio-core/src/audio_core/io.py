"""Generic file I/O shared by every package: atomic files and folders, hashes, wavs.

Everything here writes through a temporary sibling and a rename, so a reader (or a run that is
killed half-way) sees the old content or the complete new one, never a part. Files and
folders are created with the permissions the process's umask allows (``0666`` / ``0777``
masked), like every other tool, not the ``0600`` / ``0700`` of :mod:`tempfile`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
import wave
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

#: Marker file that says a folder was written by this toolkit (``--force`` replaces only those).
OURS = ".written-by-audio-run"


def umask() -> int:
    """The process's current umask (read without changing it for longer than a call)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - some filesystems do not open folders
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - e.g. folders on network filesystems
        pass
    finally:
        os.close(fd)


def atomic_write(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Write ``path`` through a temporary file in the same folder, fsync, rename, fsync the
    folder. On any failure (a full disk included) the temporary file is removed and ``path``
    keeps its old content.

    Raises:
        OSError: the folder cannot be created or written (the caller reports it).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def write_bytes(path: Path, data: bytes) -> None:
    """Atomically write ``data`` to ``path``."""

    def write(handle: IO[bytes]) -> None:
        handle.write(data)

    atomic_write(path, write)


def write_text(path: Path, text: str) -> None:
    """Atomically write ``text`` (UTF-8) to ``path``."""
    write_bytes(path, text.encode("utf-8"))


def sha256_of(path: Path) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_ours(path: Path) -> bool:
    """Whether ``path`` is a folder this toolkit wrote (it holds the :data:`OURS` marker)."""
    return path.is_dir() and (path / OURS).is_file()


@contextlib.contextmanager
def replacing_dir(
    target: Path,
    *,
    force: bool = False,
    mark: bool = True,
    ours: Callable[[Path], bool] = is_ours,
) -> Iterator[Path]:
    """Build a folder that replaces ``target`` atomically.

    Yields a fresh temporary sibling folder to fill. When the ``with`` block succeeds it is
    renamed to ``target`` (an existing ``target`` folder is swapped out and deleted); when it
    fails the temporary folder is removed and ``target`` is untouched.

    Args:
        target: the folder to create or replace.
        force: replace an existing ``target``. Only a folder that this toolkit wrote (it
            holds the :data:`OURS` marker) or an empty folder is replaced; a file, or a folder
            of someone else's, is refused even then.
        mark: leave the :data:`OURS` marker in the new folder.
        ours: what counts as a folder of ours (default: it holds the marker).

    Raises:
        FileExistsError: ``target`` exists and may not be replaced; the message says why.
        OSError: the parent cannot be written.
    """
    check_replaceable(target, force=force, ours=ours)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.tmp-"))
    try:
        os.chmod(tmp, 0o777 & ~umask())
        yield tmp
        if mark:
            (tmp / OURS).write_text("Written by audio-run; --force may replace this folder.\n")
        _swap_into_place(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def check_replaceable(target: Path, *, force: bool, ours: Callable[[Path], bool] = is_ours) -> None:
    """Refuse, before any work, a ``target`` that :func:`replacing_dir` would not replace.

    Raises:
        FileExistsError: naming ``target`` and what to do.
    """
    if not (target.exists() or target.is_symlink()):
        return
    if not target.is_dir() or target.is_symlink():
        raise FileExistsError(
            f"{target} exists and is not a folder; choose another output (it is never replaced)"
        )
    empty = not any(target.iterdir())
    if empty:
        return
    if not force:
        raise FileExistsError(f"{target} already exists; pass --force to replace it")
    if not ours(target):
        raise FileExistsError(
            f"{target} is a folder that audio-run did not write (no {OURS}); "
            "--force replaces only its own output folders: choose another output"
        )


def _swap_into_place(tmp: Path, target: Path) -> None:
    if target.exists():
        old = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.old-"))
        os.replace(target, old / "content")
        os.replace(tmp, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, target)
    _fsync_dir(target.parent)


def pcm16(samples: Any) -> bytes:
    """Samples in ``[-1, 1]`` (a 1-D tensor, array or sequence; clipped) as little-endian
    16-bit PCM."""
    import array
    import sys

    import torch

    values = torch.as_tensor(samples).detach().cpu().double().reshape(-1)
    ints = (values.clamp(-1.0, 1.0) * 32767.0).round().to(torch.int16)
    pcm = array.array("h", ints.tolist())
    if sys.byteorder == "big":  # pragma: no cover - wav is little-endian
        pcm.byteswap()
    return pcm.tobytes()


def write_wav(path: Path, samples: Any, sample_rate: int) -> None:
    """Atomically write a mono 16-bit PCM wav with the standard library's ``wave``.

    Args:
        samples: a 1-D tensor or array of floats in ``[-1, 1]`` (values outside are clipped).
        sample_rate: in Hz.
    """
    data = pcm16(samples)

    def write(handle: IO[bytes]) -> None:
        with wave.open(handle, "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(int(sample_rate))
            out.writeframes(data)

    atomic_write(path, write)


def describe_os_error(exc: OSError) -> str:
    """One line for an operating-system error: the path(s) and the errno's meaning, e.g.
    ``runs/x/checkpoints/last.pt: No space left on device (ENOSPC)``."""
    import errno

    reason = exc.strerror or str(exc)
    code = errno.errorcode.get(exc.errno or -1)
    if code:
        reason = f"{reason} ({code})"
    paths = [p for p in (exc.filename, exc.filename2) if p is not None]
    where = " -> ".join(os.fsdecode(p) for p in paths)
    return f"{where}: {reason}" if where else reason


def finite_json(value: Any) -> Any:
    """``value`` with every non-finite float (``nan``, ``inf``) replaced by ``None``: JSON has
    no such numbers, and ``json.dumps`` would write ``NaN`` / ``Infinity``, which no JSON
    parser must accept."""
    import math

    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite_json(v) for v in value]
    return value


def dumps_json(value: Any, *, indent: int | None = None) -> str:
    """Strict JSON text of ``value`` (non-finite floats as ``null``, see :func:`finite_json`)."""
    import json

    return json.dumps(finite_json(value), indent=indent, allow_nan=False)
