"""``audio-run data``: download the published datasets, write the built-in one.

Added to ``audio-run`` through the ``register_commands`` hook. Nothing heavy is imported until
a handler runs, so ``audio-run --help`` stays fast.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from audio_core.threads import THREADS_HELP, announce, set_threads, threads_argument

from .sources import SOURCES

_DOWNLOAD_EPILOG = """\
examples:
  audio-run data download sc09 --root data/sc09
  audio-run data download youtubemix --url https://mirror.example/youtubemix.zip

A broken transfer keeps DIR/../.NAME.zip.part; running the same command again resumes it.
URLs can also be overridden with AUDIO_DATA_URL_<NAME> (e.g. AUDIO_DATA_URL_SC09)."""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    data = subparsers.add_parser(
        "data",
        help="download datasets or write the built-in sc09-synth",
        description="Fetch and prepare datasets. See `audio-run data download --help` and "
        "`audio-run data make --help`.",
        allow_abbrev=False,
    )
    data.set_defaults(handler=lambda args, context: _usage(data))
    actions = data.add_subparsers(dest="data_command", metavar="ACTION")
    download = actions.add_parser(
        "download",
        help="download and unpack a published dataset",
        description="Download a published dataset archive (resumable, progress bar, size and "
        "SHA-256 checked when known), unpack it safely and move it into place atomically.",
        epilog=_DOWNLOAD_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    download.add_argument("name", choices=sorted(SOURCES), help="the dataset")
    download.add_argument(
        "--root", type=Path, help="where the dataset folder goes (default: data/NAME)"
    )
    download.add_argument("--url", help="download from this URL instead of the published one")
    download.add_argument("--sha256", help="expected SHA-256 of the archive (checked if given)")
    download.add_argument("--force", action="store_true", help="replace an existing folder")
    download.add_argument("--quiet", action="store_true", help="no progress bar")
    download.set_defaults(handler=_download)

    make = actions.add_parser(
        "make",
        help="write the built-in sc09-synth dataset",
        description="Write sc09-synth: deterministic speech-like clips of the ten digit words in "
        "the SC09 layout (1 s, 16 kHz, validation_list.txt and testing_list.txt), atomically.",
        allow_abbrev=False,
    )
    make.add_argument("name", choices=["sc09-synth"], help="the dataset to write")
    make.add_argument(
        "--root", type=Path, default=Path("data/sc09-synth"), help="target folder (data/sc09-synth)"
    )
    make.add_argument("--per-class", type=int, default=100, help="clips per word (default 100)")
    make.add_argument("--force", action="store_true", help="replace an existing folder")
    make.add_argument("--quiet", action="store_true", help="no progress bar")
    make.add_argument(
        "--threads",
        type=threads_argument,
        default=0,
        metavar="N",
        help=THREADS_HELP + "; auto takes 1: each clip is small serial work",
    )
    make.set_defaults(handler=_make)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_usage()
    print("audio-run data: error: name an action: download or make")
    return 2


def _download(args: argparse.Namespace, context: Any) -> int:
    from .download import fetch_dataset
    from .sources import source

    src = source(args.name)
    url = args.url or src.url
    sha = args.sha256 if args.sha256 is not None else (src.sha256 if url == src.url else "")
    size = src.size if url == src.url else 0
    target = args.root if args.root is not None else Path("data") / src.folder
    fetch_dataset(url, target, sha256=sha, size=size, force=args.force, progress=not args.quiet)
    print(f"{args.name}: ready in {target}", file=context.stdout)
    return 0


def _make(args: argparse.Namespace, context: Any) -> int:
    from tqdm import tqdm

    from .synth import WORDS, make_sc09_synth

    announce(set_threads(args.threads, serial=True), quiet=args.quiet)
    total = args.per_class * len(WORDS)
    with tqdm(total=total, unit="clip", desc="sc09-synth", disable=args.quiet, leave=False) as bar:
        make_sc09_synth(args.root, per_class=args.per_class, force=args.force, progress=bar.update)
    print(f"sc09-synth: {total} clips in {args.root}", file=context.stdout)
    return 0
