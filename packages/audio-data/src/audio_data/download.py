"""Resumable, verified downloads and safe extraction of dataset archives.

``download_archive`` fetches into ``<archive>.part``, resuming with an HTTP ``Range`` request
when a partial file is there, checks size and SHA-256 when known, and renames the result into
place only when it is whole. ``extract_archive`` unpacks a zip or tar into a temporary sibling
folder, refusing any member whose path would land outside it (absolute paths, ``..``, links),
then renames the folder into place: the dataset folder either appears complete or not at all.
"""

from __future__ import annotations

import http.client
import os
import shutil
import tarfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

from audio_core.io import check_replaceable, replacing_dir, sha256_of

from .errors import DataError

CHUNK = 1 << 16


def _progress(total: int | None, initial: int, desc: str, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(
        total=total,
        initial=initial,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=desc,
        disable=not enabled,
        leave=False,
    )


def download_archive(
    url: str,
    archive: Path,
    *,
    sha256: str = "",
    size: int = 0,
    progress: bool = True,
    timeout: float = 60.0,
) -> Path:
    """Fetch ``url`` to ``archive`` (resuming ``archive.part``) and verify it.

    Raises:
        DataError: the server refused, the transfer broke off (run again to resume), or the
            size or checksum is wrong (the bad file is deleted).
    """
    archive.parent.mkdir(parents=True, exist_ok=True)
    part = archive.with_name(archive.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # the partial file is already whole
            response = None
        else:
            raise DataError(f"{url}: the server answered {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise DataError(f"{url}: cannot connect ({exc}); check the URL or the network") from None
    if response is not None:
        with response:
            resumed = response.status == 206
            if not resumed:
                have = 0  # the server sent the whole file: start over
            length = response.headers.get("Content-Length")
            total = have + int(length) if length is not None else None
            bar = _progress(total, have, archive.name, progress)
            try:
                with part.open("ab" if resumed else "wb") as out:
                    while True:
                        try:
                            block = response.read(CHUNK)
                        except (http.client.IncompleteRead, OSError) as exc:
                            raise DataError(
                                f"{url}: the download broke off after "
                                f"{part.stat().st_size} bytes ({type(exc).__name__}); run the "
                                f"same command again to resume from {part}"
                            ) from None
                        if not block:
                            break
                        out.write(block)
                        bar.update(len(block))
                    out.flush()
                    os.fsync(out.fileno())
            finally:
                bar.close()
            got = part.stat().st_size
            if total is not None and got < total:
                raise DataError(
                    f"{url}: the download broke off after {got} of {total} bytes; run the same "
                    f"command again to resume from {part}"
                )
    got = part.stat().st_size
    if size and got != size:
        part.unlink()
        raise DataError(
            f"{url}: got {got} bytes, expected {size}; the partial file was deleted, run again"
        )
    if sha256:
        actual = sha256_of(part)
        if actual != sha256.lower():
            part.unlink()
            raise DataError(
                f"{url}: SHA-256 {actual} does not match the expected {sha256}; the file was "
                "deleted (a corrupt transfer or a changed archive: check the URL)"
            )
    os.replace(part, archive)
    return archive


def _check_member(name: str, link: bool, archive: Path) -> None:
    path = PurePosixPath(name.replace("\\", "/"))
    if link or path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        raise DataError(
            f"{archive}: member {name!r} would be written outside the target folder "
            "(absolute path, '..' or a link); refusing to extract this archive"
        )


def _unpack(archive: Path, into: Path) -> None:
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                is_link = (info.external_attr >> 16) & 0o170000 == 0o120000
                _check_member(info.filename, is_link, archive)
            zf.extractall(into)
    elif tarfile.is_tarfile(archive):
        with tarfile.open(archive) as tf:
            members = tf.getmembers()
            for member in members:
                _check_member(member.name, member.issym() or member.islnk(), archive)
            tf.extractall(into, members=members, filter="data")
    else:
        raise DataError(f"{archive}: neither a zip nor a tar archive; delete it and download again")


def extract_archive(archive: Path, target: Path, *, force: bool = False) -> Path:
    """Unpack ``archive`` (zip or tar) so that ``target`` holds its content.

    An archive with a single top-level folder has that folder's content moved up (so
    ``sc09.zip`` holding ``sc09/...`` yields ``target/...``).

    Raises:
        DataError: ``target`` exists without ``force``, the archive is unreadable, or a
            member would escape the target folder (nothing is written then).
    """
    try:
        with replacing_dir(target, force=force) as out:
            staging = out / ".unpack"
            staging.mkdir()
            _unpack(archive, staging)
            entries = [p for p in staging.iterdir() if not p.name.startswith("__MACOSX")]
            content = entries[0] if len(entries) == 1 and entries[0].is_dir() else staging
            for child in list(content.iterdir()):
                os.replace(child, out / child.name)
            shutil.rmtree(staging)
    except FileExistsError as exc:
        raise DataError(str(exc)) from None
    except (zipfile.BadZipFile, tarfile.TarError) as exc:
        raise DataError(f"{archive}: cannot unpack ({exc}); delete it and download again") from None
    return target


def fetch_dataset(
    url: str,
    target: Path,
    *,
    sha256: str = "",
    size: int = 0,
    force: bool = False,
    progress: bool = True,
) -> Path:
    """Download ``url`` next to ``target``, extract it to ``target``, delete the archive."""
    try:
        check_replaceable(target, force=force)
    except FileExistsError as exc:
        raise DataError(str(exc)) from None
    suffix = "".join(PurePosixPath(url.split("?")[0]).suffixes[-2:]) or ".zip"
    archive = target.parent / f".{target.name}{suffix}"
    download_archive(url, archive, sha256=sha256, size=size, progress=progress)
    extract_archive(archive, target, force=force)
    archive.unlink()
    return target
