"""``mos-tools``: prepare, run and score listening tests.

Exit status: 0 on success; 2 for usage errors and bad input (one line,
``mos-tools: error: ...``, naming the file, row or flag); 1 for an operating-system error
(disk full, read-only folder: one line naming the path).
"""

from __future__ import annotations

import argparse
import errno
import sys
from collections.abc import Sequence
from pathlib import Path

from .errors import MosError

PROG = "mos-tools"


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def _port(text: str) -> int:
    value = _positive(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port (1-65535)")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Mean-opinion-score listening tests: choose the samples, build HIT "
        "batches and their HTML for MTurk, or serve them to raters locally, and score the "
        "results.",
        allow_abbrev=False,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    sel = sub.add_parser("select-confident", allow_abbrev=False,
                         help="keep the classifier's top-k most confident samples per class",
                         description="For SC09: per method, keep the --top-k samples with the "
                         "highest classifier confidence in each predicted class (what "
                         "`audio-run evaluate --save-probs` writes).")  # fmt: skip
    sel.add_argument(
        "--probs", type=Path, required=True, help="folder of <method>.npy probabilities"
    )
    sel.add_argument("--samples", type=Path, required=True, help="folder of <method>/*.wav")
    sel.add_argument("--methods", nargs="+", required=True, help="method folder names")
    sel.add_argument("--top-k", type=_positive, default=50, help="samples per class (50)")
    sel.add_argument("--out", type=Path, required=True, help="output folder")
    sel.add_argument("--force", action="store_true", help="replace an existing output folder")

    hits = sub.add_parser("build-hits", allow_abbrev=False,
                          help="copy wavs under unguessable ids and write the batch CSVs",
                          description="Check every clip (a readable wav, one sample rate), "
                          "shuffle with the seed, give every clip an id, copy them to "
                          "OUTPUT/CONDITION/BATCH/UID.wav and write batches.txt, uids.txt, "
                          "urls.csv, urls_BATCH.csv and manifest.json. Nothing is written "
                          "when any check fails.")  # fmt: skip
    hits.add_argument("--condition", required=True,
                      help="name of this study: letters, digits, '.', '_', '-'")  # fmt: skip
    hits.add_argument("--input-dir", type=Path, required=True, help="folder of <method>/*.wav")
    hits.add_argument("--methods", nargs="+", required=True, help="method folder names")
    hits.add_argument("--batch-size", type=_positive, required=True,
                      help="files per batch; must divide the number of files (per method "
                      "for per-method)")  # fmt: skip
    hits.add_argument("--output-dir", type=Path, required=True, help="where CONDITION/ goes")
    hits.add_argument(
        "--hit-layout",
        choices=["mixed", "per-method", "all-methods"],
        default="mixed",
        help="mixed (default): HITs of BATCH_SIZE clips mixing methods; per-method: HITs of "
        "one method's own files (the reference's SC09 study); all-methods: every method's "
        "version of BATCH_SIZE files in one HIT (the reference's YouTubeMix study)",
    )
    hits.add_argument(
        "--style",
        choices=["mos-tools", "reference"],
        default="mos-tools",
        help="mos-tools (default) or the reference's files, ids and column names, id for id",
    )
    hits.add_argument(
        "--form",
        choices=["music", "speech"],
        default="music",
        help="the questions raters answer (music: default), recorded for `serve`",
    )
    hits.add_argument(
        "--url-template",
        default="https://example.com/{condition}/{batch}/{uid}.wav",
        help="public URL of each clip with {condition}, {batch}, {uid} (or three {} in that "
        "order, as the reference writes it)",
    )
    hits.add_argument("--seed", type=int,
                      help="seed of every shuffle and id (default: random and recorded; 0 "
                      "with --style reference, the reference's own)")  # fmt: skip
    hits.add_argument("--gold", action="append", default=[], metavar="METHOD/FILE[:Q<=N,...]",
                      help="a known-answer clip and the bounds its ratings must keep, e.g. "
                      "test/4.wav:quality<=2,musicality<=2; repeatable")  # fmt: skip
    hits.add_argument("--gold-file", type=Path,
                      help="gold clips from a CSV: method,file,question,min,max")  # fmt: skip
    hits.add_argument("--gold-method",
                      help="every clip of this method is gold; bounds from score's "
                      "--gold-min/--gold-max")  # fmt: skip
    hits.add_argument(
        "--labels",
        type=Path,
        help="method,file,label CSV (default: INPUT_DIR/labels.csv if present, as "
        "select-confident writes it); speech scoring compares digits with it",
    )
    hits.add_argument(
        "--sample-rate",
        type=_positive,
        help="every clip must have this rate (default: the first clip's)",
    )
    hits.add_argument("--force", action="store_true", help="replace existing condition folders")

    tpl = sub.add_parser("template", allow_abbrev=False, help="write the HIT HTML for N clips",
                         description="The HIT page for MTurk: every clip must play to the end "
                         "before its questions unlock and the page can be submitted.")  # fmt: skip
    tpl.add_argument("kind", choices=["music", "speech"])
    tpl.add_argument("n", type=_positive, help="clips per HIT (build-hits prints it)")
    tpl.add_argument("--style", choices=["mos-tools", "reference"], default="mos-tools",
                     help="field names: mos-tools' (url_1, quality_1) or the reference's "
                     "(recording_0_url, recording_0_quality)")  # fmt: skip
    tpl.add_argument("--out", type=Path, help="write to this file instead of stdout")
    tpl.add_argument("--force", action="store_true", help="replace an existing --out file")

    score = sub.add_parser("score", allow_abbrev=False, help="MOS with confidence intervals",
                           description="Score results CSVs (from MTurk or `mos-tools export`): "
                           "drop raters who fail gold items or are outliers, then report per "
                           "method and question the MOS, 95% t, bootstrap and normal "
                           "intervals, counts and agreement.")  # fmt: skip
    score.add_argument(
        "--results", type=Path, nargs="+", required=True, help="Batch_*_batch_results.csv files"
    )
    score.add_argument("--manifest", type=Path, nargs="+", required=True,
                       help="manifest.json of build-hits (one per condition rated)")  # fmt: skip
    score.add_argument("--gold-max", type=float,
                       help="--gold-method clips must be rated at most this")  # fmt: skip
    score.add_argument("--gold-min", type=float,
                       help="--gold-method clips must be rated at least this")  # fmt: skip
    score.add_argument("--gold-failures", type=int, default=1,
                       help="gold ratings out of bounds a rater may have and still count "
                       "(default 1; 0 drops at the first, as the reference did)")  # fmt: skip
    score.add_argument(
        "--outlier-z",
        type=float,
        default=3.5,
        help="robust z beyond which a rater is an outlier (0: off; 3.5)",
    )
    score.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    score.add_argument("--out", type=Path, help="also write scores.csv and scores.json here")
    score.add_argument("--force", action="store_true", help="replace scores in --out")

    srv = sub.add_parser("serve", allow_abbrev=False, help="run a local listening-test server",
                         description="Serve the HITs of one or more condition folders to "
                         "raters in their browsers; ratings go to an SQLite file (export them "
                         "with `mos-tools export`).")  # fmt: skip
    srv.add_argument("hits_dir", type=Path, nargs="+", metavar="HITS_DIR",
                     help="a condition folder build-hits wrote (OUTPUT/CONDITION)")  # fmt: skip
    srv.add_argument(
        "--db",
        type=Path,
        default=Path("ratings.sqlite"),
        help="the ratings database (./ratings.sqlite; made if new)",
    )
    srv.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (127.0.0.1: this machine only)"
    )
    srv.add_argument("--port", type=_port, default=8000, help="port (default 8000)")
    srv.add_argument("--form", choices=["music", "speech"],
                     help="the questions (default: the manifest's --form)")  # fmt: skip
    srv.add_argument("--threads", type=_positive, default=8, help="worker threads (8)")

    inv = sub.add_parser("invite", allow_abbrev=False, help="make invitation links for raters",
                         description="Add raters with secret tokens to the ratings database "
                         "and print one link each. Once any invitation exists, only invited "
                         "raters can join.")  # fmt: skip
    inv.add_argument("names", nargs="+", metavar="NAME", help="rater names (shown in exports)")
    inv.add_argument("--db", type=Path, default=Path("ratings.sqlite"), help="./ratings.sqlite")
    inv.add_argument("--url", default="http://127.0.0.1:8000",
                     help="the server's address as raters reach it")  # fmt: skip

    exp = sub.add_parser("export", allow_abbrev=False, help="write served ratings as results CSV",
                         description="Every submitted HIT as a row of an MTurk-format results "
                         "CSV, for `mos-tools score`.")  # fmt: skip
    exp.add_argument("--db", type=Path, default=Path("ratings.sqlite"), help="./ratings.sqlite")
    exp.add_argument("--out", type=Path, required=True, help="the results CSV to write")
    exp.add_argument("--force", action="store_true", help="replace an existing --out file")
    return parser


def _run(args: argparse.Namespace) -> None:
    if args.command == "select-confident":
        from .select import select_confident

        kept = select_confident(args.probs, args.samples, args.methods, top_k=args.top_k,
                                out=args.out, force=args.force)  # fmt: skip
        print(", ".join(f"{m}: {n} files" for m, n in kept.items()) + f" -> {args.out}")
    elif args.command == "build-hits":
        from .hits import build_hits, parse_gold, read_gold_file

        gold = [parse_gold(spec) for spec in args.gold]
        if args.gold_file is not None:
            gold += read_gold_file(args.gold_file)
        manifests = build_hits(
            condition=args.condition, input_dir=args.input_dir, methods=args.methods,
            batch_size=args.batch_size, output_dir=args.output_dir,
            url_template=args.url_template, seed=args.seed, gold_method=args.gold_method,
            gold=gold, hit_layout=args.hit_layout, style=args.style, form=args.form,
            labels=args.labels, sample_rate=args.sample_rate, force=args.force,
        )  # fmt: skip
        for m in manifests:
            n_hits = len({c["hit"] for c in m["clips"].values()})
            print(f"{len(m['clips'])} clips in {n_hits} HITs of {m['hit_size']} in "
                  f"{args.output_dir / m['condition']} (seed {m['seed']}, {len(m['gold'])} "
                  f"gold); page: mos-tools template {m['form']} {m['hit_size']}"
                  f"{' --style reference' if m['style'] == 'reference' else ''}")  # fmt: skip
    elif args.command == "template":
        from .files import check_output_file, write_text
        from .templates import render

        html = render(args.kind, args.n, style=args.style)
        if args.out:
            check_output_file(args.out, force=args.force)
            write_text(args.out, html)
        else:
            sys.stdout.write(html)
    elif args.command == "score":
        from .score import (
            Rules,
            check_out_dir,
            merge_manifests,
            read_results,
            summarize,
            table,
            write_outputs,
        )

        if args.gold_failures < 0:
            raise MosError(f"--gold-failures must be 0 or more; got {args.gold_failures}")
        if args.out is not None:
            check_out_dir(args.out, force=args.force)
        manifest = merge_manifests(args.manifest)
        ratings, digits = read_results(args.results, manifest)
        rules = Rules(args.gold_max, args.gold_min, args.gold_failures, args.outlier_z, args.seed)
        summary = summarize(ratings, digits, manifest, rules)
        print(table(summary))
        if args.out:
            write_outputs(summary, args.out, force=args.force)
    elif args.command == "serve":
        from .serve import serve

        serve(args.hits_dir, db=args.db, host=args.host, port=args.port, form=args.form,
              threads=args.threads, announce=lambda line: print(line, file=sys.stderr))  # fmt: skip
    elif args.command == "invite":
        from .store import Store

        store = Store(args.db)
        try:
            for name, token in store.invite(args.names):
                print(f"{name}\t{args.url.rstrip('/')}/join/{token}")
        finally:
            store.close()
    else:
        from .files import check_output_file, write_text
        from .store import Store, export_csv

        check_output_file(args.out, force=args.force)
        if not args.db.is_file():
            raise MosError(f"--db {args.db}: no such ratings database")
        store = Store(args.db)
        try:
            text = export_csv(store)
        finally:
            store.close()
        write_text(args.out, text)
        print(f"{text.count(chr(10)) - 1} submissions -> {args.out}", file=sys.stderr)


def _say(line: str) -> None:
    text = f"{PROG}: error: {line}"
    sys.stderr.write(text.encode("utf-8", "backslashreplace").decode("utf-8") + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        _run(args)
    except MosError as exc:
        _say(str(exc))
        return 2
    except KeyboardInterrupt:
        return 130
    except OSError as exc:  # a full disk, a read-only folder, a port in use: one line
        code = errno.errorcode.get(exc.errno or 0, "")
        where = f"{exc.filename}: " if exc.filename else ""
        reason = exc.strerror or str(exc)
        _say(f"{where}{reason}{f' ({code})' if code else ''}")
        return 1
    return 0


def run() -> None:
    sys.exit(main())
