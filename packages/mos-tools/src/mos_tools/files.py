"""Writing files and folders safely: atomically, with the umask's permissions, and never over
something that exists without ``--force``.

mos-tools imports nothing else of this project, so these few helpers live here.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import MosError

# Conditions, methods and batch names become folder names and URL path segments: letters,
# digits, '.', '_' and '-', not starting with '.' or '-' (no '..', no hidden or option-like
# names), at most 100 characters. Nothing in such a name needs escaping in a URL or in HTML.
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
# File names go into uids.txt (tab- or space-separated), CSVs and the manifest: printable,
# no tab, no newline, no path separator.
_BAD_FILE_CHARS = re.compile(r"[\x00-\x1f\x7f/\\]")


def check_name(value: str, what: str) -> str:
    """``value`` if it is a safe name, else a one-line refusal naming ``what``."""
    if not _SAFE_NAME.fullmatch(value) or ".." in value:
        raise MosError(
            f"{what} {value!r}: use letters, digits, '.', '_' and '-' (not first, no '..'), "
            "at most 100 characters; it becomes a folder name and part of every URL"
        )
    return value


def check_file_name(path: Path, *, spaces: bool = True) -> str:
    """The name of a clip, refused when it cannot be written into the study's text files."""
    name = path.name
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise MosError(f"{path}: the file name is not valid UTF-8 text; rename it") from None
    if _BAD_FILE_CHARS.search(name) or (not spaces and " " in name):
        extra = "" if spaces else " or spaces (the reference's uids.txt is space-separated)"
        raise MosError(f"{path}: file names may not hold tabs, newlines, control characters{extra}")
    return name


def umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def check_output_file(path: Path, *, force: bool, flag: str = "--out") -> None:
    """Refuse an output file that exists (without ``force``), is a folder, or whose folder is
    missing."""
    if path.is_dir():
        raise MosError(f"{flag} {path}: is a folder; name a file")
    if path.exists() and not force:
        raise MosError(f"{flag} {path}: exists; pass --force to replace it")
    if not path.parent.is_dir():
        raise MosError(f"{flag} {path}: the folder {path.parent} does not exist")


def write_text(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically: a temporary sibling, fsync, rename. The
    file gets the permissions the umask allows; on failure the temporary file is removed."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.tmp-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def copy_file(source: Path, target: Path) -> None:
    """Copy the bytes (not the source's permissions: the copy is meant for upload)."""
    shutil.copyfile(source, target)
    os.chmod(target, 0o666 & ~umask())


@contextmanager
def staged_dir(target: Path, *, force: bool) -> Iterator[Path]:
    """A temporary sibling of ``target`` to fill; it replaces ``target`` when the block ends
    without error and is removed otherwise. The folder gets the umask's permissions."""
    if target.exists() and not force:
        raise MosError(f"{target} already exists; pass --force to replace it")
    if target.exists() and not target.is_dir():
        raise MosError(f"{target}: exists and is not a folder; --force replaces only folders")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.tmp-"))
    os.chmod(tmp, 0o777 & ~umask())
    try:
        yield tmp
        old = None
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            target.rename(old)
        tmp.rename(target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def make_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o777 & ~umask())
