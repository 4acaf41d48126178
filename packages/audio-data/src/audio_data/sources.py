"""Where the published datasets are downloaded from: the one place that names them.

Each URL can be overridden with ``AUDIO_DATA_URL_<NAME>`` (e.g. ``AUDIO_DATA_URL_SC09``) or
``audio-run data download NAME --url URL``; a mirror with a different file then needs
``--sha256`` (or none) as well.
"""

from __future__ import annotations

import os

from attrs import frozen


@frozen
class Source:
    """A downloadable archive.

    Attributes:
        url: where to fetch it.
        folder: the dataset folder it unpacks to (the default ``dataset.root`` ends with it).
        sha256: the archive's SHA-256 when published ("" when unknown: not checked).
        size: its size in bytes when known (0: not checked).
    """

    url: str
    folder: str
    sha256: str = ""
    size: int = 0


SOURCES: dict[str, Source] = {
    "sc09": Source("https://huggingface.co/datasets/krandiash/sc09/resolve/main/sc09.zip", "sc09"),
    "beethoven": Source(
        "https://huggingface.co/datasets/krandiash/beethoven/resolve/main/beethoven.zip",
        "beethoven",
    ),
    "youtubemix": Source(
        "https://huggingface.co/datasets/krandiash/youtubemix/resolve/main/youtubemix.zip",
        "youtubemix",
    ),
}


def source(name: str, environ: dict[str, str] | None = None) -> Source:
    """The source of ``name``, with its URL overridden by ``AUDIO_DATA_URL_<NAME>`` if set."""
    env = os.environ if environ is None else environ
    if name not in SOURCES:
        raise KeyError(name)
    base = SOURCES[name]
    override = env.get(f"AUDIO_DATA_URL_{name.upper()}")
    return Source(override, base.folder) if override else base
