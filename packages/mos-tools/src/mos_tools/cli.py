"""``mos-tools``: prepare and score MTurk listening tests. Exit 2 on bad input or usage."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from .errors import MosError

PROG = "mos-tools"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Mean-opinion-score listening tests on Amazon Mechanical Turk: choose the "
        "samples, build HIT batches and their HTML, score the results.",
        allow_abbrev=False,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    sel = sub.add_parser("select-confident", allow_abbrev=False,
                         help="keep the classifier's top-k most confident samples per class",
                         description="For SC09: per method, keep the --top-k samples with the "
                         "highest classifier confidence in each predicted class.")  # fmt: skip
    sel.add_argument(
        "--probs", type=Path, required=True, help="folder of <method>.npy probabilities"
    )
    sel.add_argument("--samples", type=Path, required=True, help="folder of <method>/*.wav")
    sel.add_argument("--methods", nargs="+", required=True, help="method folder names")
    sel.add_argument("--top-k", type=int, default=50, help="samples per class (default 50)")
    sel.add_argument("--out", type=Path, required=True, help="output folder")
    sel.add_argument("--force", action="store_true", help="replace an existing output folder")

    hits = sub.add_parser("build-hits", allow_abbrev=False,
                          help="copy wavs under unguessable ids and write MTurk batch CSVs",
                          description="Shuffle (method, file) pairs with a recorded seed, give "
                          "each an unguessable id, copy them to OUTPUT/CONDITION/BATCH/UID.wav "
                          "and write batches.txt, uids.txt, urls.csv, urls_BATCH.csv and "
                          "manifest.json.")  # fmt: skip
    hits.add_argument("--condition", required=True, help="name of this study (a folder name)")
    hits.add_argument("--input-dir", type=Path, required=True, help="folder of <method>/*.wav")
    hits.add_argument("--methods", nargs="+", required=True, help="method folder names")
    hits.add_argument(
        "--batch-size",
        type=int,
        required=True,
        help="recordings per HIT; must divide the number of files per method",
    )
    hits.add_argument("--output-dir", type=Path, required=True, help="where CONDITION/ goes")
    hits.add_argument(
        "--url-template",
        default="https://example.com/{condition}/{batch}/{uid}.wav",
        help="public URL of each clip, with {condition}, {batch}, {uid}",
    )
    hits.add_argument("--seed", type=int, help="shuffle seed (default: random, recorded)")
    hits.add_argument("--gold-method", help="a method whose clips are gold (known-answer) items")
    hits.add_argument(
        "--hit-layout",
        choices=["mixed", "per-method"],
        default="mixed",
        help="mix methods within a HIT (default) or one method per HIT (speech)",
    )
    hits.add_argument("--force", action="store_true", help="replace an existing condition folder")

    tpl = sub.add_parser("template", allow_abbrev=False, help="print the HIT HTML for N recordings")
    tpl.add_argument("kind", choices=["music", "speech"])
    tpl.add_argument("n", type=int, help="recordings per HIT (the batch size)")
    tpl.add_argument("--out", type=Path, help="write to this file instead of stdout")

    score = sub.add_parser("score", allow_abbrev=False, help="MOS with confidence intervals",
                           description="Score MTurk results: drop raters who fail gold items "
                           "or are outliers, then report per method and question the MOS, "
                           "95%% t and bootstrap intervals, counts and agreement.")  # fmt: skip
    score.add_argument(
        "--results", type=Path, nargs="+", required=True, help="Batch_*_batch_results.csv files"
    )
    score.add_argument("--manifest", type=Path, required=True, help="manifest.json of build-hits")
    score.add_argument("--gold-max", type=float, help="gold clips must be rated at most this")
    score.add_argument("--gold-min", type=float, help="gold clips must be rated at least this")
    score.add_argument(
        "--gold-failures",
        type=int,
        default=0,
        help="gold ratings a rater may miss before being dropped (default 0)",
    )
    score.add_argument(
        "--outlier-z",
        type=float,
        default=3.5,
        help="robust z beyond which a rater is an outlier (0: off; default 3.5)",
    )
    score.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    score.add_argument("--out", type=Path, help="also write scores.csv and scores.json here")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "select-confident":
            from .select import select_confident

            kept = select_confident(args.probs, args.samples, args.methods, top_k=args.top_k,
                                    out=args.out, force=args.force)  # fmt: skip
            print(", ".join(f"{m}: {n} files" for m, n in kept.items()) + f" -> {args.out}")
        elif args.command == "build-hits":
            from .hits import build_hits

            manifest = build_hits(
                condition=args.condition, input_dir=args.input_dir, methods=args.methods,
                batch_size=args.batch_size, output_dir=args.output_dir,
                url_template=args.url_template, seed=args.seed, gold_method=args.gold_method,
                hit_layout=args.hit_layout, force=args.force,
            )  # fmt: skip
            print(f"{len(manifest['clips'])} clips in {args.output_dir / args.condition} "
                  f"(seed {manifest['seed']})")  # fmt: skip
        elif args.command == "template":
            from .templates import render

            html = render(args.kind, args.n)
            if args.out:
                args.out.write_text(html)
            else:
                sys.stdout.write(html)
        else:
            from .score import Rules, read_results, summarize, table, write_outputs

            if not args.manifest.is_file():
                raise MosError(f"{args.manifest}: no such manifest")
            manifest = json.loads(args.manifest.read_text())
            ratings, digits = read_results(args.results, manifest)
            rules = Rules(
                args.gold_max, args.gold_min, args.gold_failures, args.outlier_z, args.seed
            )
            summary = summarize(ratings, digits, manifest, rules)
            print(table(summary))
            if args.out:
                write_outputs(summary, args.out)
    except MosError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    return 0


def run() -> None:
    sys.exit(main())
