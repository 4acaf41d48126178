"""``audio-run classifier train|test`` and ``audio-run evaluate``.

Added through the ``register_commands`` hook; torch, NumPy, SciPy and scikit-learn are imported
only inside the handlers, so ``audio-run --help`` stays fast.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from audio_core.errors import ConfigError
from audio_core.threads import THREADS_HELP, announce, set_threads, threads_argument

if TYPE_CHECKING:
    from audio_core.commands import CommandContext
    from audio_core.resolve import RawConfig

_OVERRIDES = """\
KEY=VALUE settings (values read as TOML): dataset.FIELD=VALUE sets the dataset's config
(dataset.root=data/sc09)"""

_TRAIN_EPILOG = """\
examples:
  audio-run classifier train --dataset sc09 dataset.root=data/sc09
  audio-run classifier train --dataset sc09-synth --preset small --epochs 8 --output runs/clf

Writes OUTPUT/best.pt (best validation accuracy), OUTPUT/last.pt (every epoch) and
OUTPUT/history.jsonl, then reports test accuracy of best.pt."""

_EVAL_EPILOG = """\
examples:
  audio-run evaluate --samples runs/sc09/samples/best --classifier runs/classifier/best.pt
  audio-run evaluate --samples DIR --classifier CKPT --threshold
  audio-run evaluate --samples DIR --classifier CKPT --threshold-fixed 0.4 0.95
  audio-run evaluate --classifier CKPT --dataset-metrics --output runs/dataset-metrics
  audio-run evaluate --samples DIR --classifier CKPT is.splits=2 ndb.k=20

Metrics: fid (-), is (+), mis (+), am (-), ndb and ndb_k (-); (+) higher is better. The
reference set is the classifier's training split. Features are cached (--cache-dir), keyed
by the classifier's SHA-256 and every file's name, size and time."""

PRESETS: dict[str, dict[str, Any]] = {
    "resnext": {},
    "resnext29-8x64d": {"widths": (256, 512, 1024), "cardinality": 8, "group_width": 64},
    "small": {
        "widths": (16, 32, 64),
        "blocks": 1,
        "cardinality": 4,
        "group_width": 2,
        "n_mels": 32,
        "hop": 320,
    },
}


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    classifier = subparsers.add_parser(
        "classifier",
        help="train or test the SC09 classifier the metrics use",
        description="The ResNeXt log-mel classifier of the SC09 metrics. See "
        "`audio-run classifier train --help` and `audio-run classifier test --help`.",
        allow_abbrev=False,
    )
    classifier.set_defaults(handler=lambda args, context: _usage(classifier))
    actions = classifier.add_subparsers(dest="classifier_command", metavar="ACTION")
    train = actions.add_parser(
        "train",
        help="train the classifier on a labelled dataset (sc09)",
        description="Train the ResNeXt on log-mel spectrograms of a labelled dataset's train "
        "split with augmentation (shift, gain, noise), keeping the best checkpoint by "
        "validation accuracy.",
        epilog=_TRAIN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    train.add_argument("--dataset", default="sc09", help="a labelled dataset (default sc09)")
    train.add_argument(
        "--output", type=Path, default=Path("runs/classifier"), help="run folder (runs/classifier)"
    )
    train.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default="resnext",
        help="resnext: 3 stages of 3 blocks, 8 groups of 4, 0.36 M weights (default); "
        "resnext29-8x64d: the reference's size, 34 M weights (GPU); "
        "small: 1 block per stage, 32 mels, 20 ms hop (CPUs, tests)",
    )
    train.add_argument("--epochs", type=_positive_int, default=30, help="epochs (30)")
    train.add_argument("--batch-size", type=_positive_int, default=64, help="clips per step (64)")
    train.add_argument("--lr", type=_positive_float, default=3e-3, help="peak learning rate (3e-3)")
    train.add_argument("--seed", type=int, default=0, help="random seed (0)")
    train.add_argument("--no-augment", action="store_true", help="train on the clips as they are")
    _common(train)
    train.add_argument("--force", action="store_true", help="replace an existing run folder")
    train.add_argument(
        "overrides",
        nargs="*",
        metavar="KEY=VALUE",
        help="dataset.FIELD=VALUE, or classifier.FIELD=VALUE (classifier.n_mels=64)",
    )
    train.set_defaults(handler=_train)

    test = actions.add_parser(
        "test",
        help="accuracy and confusion matrix of a checkpoint",
        description="Accuracy and confusion matrix of a classifier checkpoint on a split of "
        "the dataset it was trained on (or --dataset).",
        allow_abbrev=False,
    )
    test.add_argument("checkpoint", type=Path, help="a classifier checkpoint (best.pt)")
    test.add_argument("--split", choices=["train", "val", "test"], default="test")
    test.add_argument("--dataset", help="another labelled dataset with the same classes")
    test.add_argument("--json", action="store_true", help="print JSON instead of a table")
    _common(test)
    test.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help=_OVERRIDES)
    test.set_defaults(handler=_test)

    evaluate = subparsers.add_parser(
        "evaluate",
        help="FID, IS, mIS, AM and NDB of generated samples (the SC09 protocol)",
        description="Compute every registered metric on a folder of wavs against the "
        "classifier's training set, optionally with likelihood thresholding, and write "
        "metrics.json, a table and a per-class bar chart.",
        epilog=_EVAL_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    evaluate.add_argument("--samples", type=Path, metavar="DIR", help="a folder of wavs")
    evaluate.add_argument(
        "--classifier", type=Path, required=True, metavar="CKPT", help="classifier checkpoint"
    )
    evaluate.add_argument(
        "--dataset-metrics",
        action="store_true",
        help="also compute the metrics of the train and test splits themselves",
    )
    group = evaluate.add_mutually_exclusive_group()
    group.add_argument(
        "--threshold",
        action="store_true",
        help="tune log-likelihood cut-offs on half the samples, report on the other half",
    )
    group.add_argument(
        "--threshold-fixed",
        nargs=2,
        type=float,
        metavar=("LO", "HI"),
        help="fixed quantile cut-offs (0.4 0.95 is the reference's behaviour)",
    )
    evaluate.add_argument(
        "--threshold-metric", default="is", help="what the cut-off search optimises (is)"
    )
    evaluate.add_argument("--dataset", help="reference dataset (default: the classifier's)")
    evaluate.add_argument(
        "--output", type=Path, metavar="DIR", help="where metrics.json goes (default: --samples)"
    )
    evaluate.add_argument("--seed", type=int, default=0, help="seed of every random choice (0)")
    evaluate.add_argument("--cache-dir", type=Path, help="feature cache (default ~/.cache/...)")
    evaluate.add_argument("--no-cache", action="store_true", help="neither read nor write it")
    evaluate.add_argument(
        "--save-probs",
        type=Path,
        metavar="DIR",
        help="also write DIR/<samples folder name>.npy: the classifier's probabilities, one "
        "row per wav in sorted file-name order (what mos-tools select-confident reads)",
    )
    evaluate.add_argument(
        "--force", action="store_true", help="replace an existing metrics.json (and probs)"
    )
    _common(evaluate)
    evaluate.add_argument(
        "overrides",
        nargs="*",
        metavar="KEY=VALUE",
        help="METRIC.FIELD=VALUE (is.splits=2, ndb.k=20) or dataset.FIELD=VALUE",
    )
    evaluate.set_defaults(handler=_evaluate)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--mel-padding",
        choices=["reflect", "constant"],
        default="reflect",
        help="the reference classifier (resnext.pth) only: its STFT padding; reflect (default) "
        "as librosa <= 0.8 made the released cache, constant as librosa >= 0.9",
    )
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 (auto: cuda if any)")
    parser.add_argument("--batch", type=_positive_int, default=128, help="clips per forward (128)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--threads", type=threads_argument, default=0, metavar="N",
                        help=THREADS_HELP)  # fmt: skip


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive; got {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number; got {text}")
    return value


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_usage()
    print("audio-run classifier: error: name an action: train or test")
    return 2


# -- configs -----------------------------------------------------------------------------------
def build_dataset(
    ctx: CommandContext, name: str, base: dict[str, Any], raw: RawConfig
) -> tuple[Any, dict[str, Any]]:
    """Build a registered dataset from ``base`` settings plus the ``dataset.*`` overrides in
    ``raw``; returns the built data and the settings that were used (to store in checkpoints
    and metrics.json)."""
    from audio_core.converter import make_converter
    from audio_core.registry import UnknownNameError
    from audio_core.resolve import structure_section

    try:
        spec = ctx.registry.get("datasets", name)
    except UnknownNameError as exc:
        raise ConfigError([f"--dataset: {exc}"]) from None
    config = structure_section(ctx.registry, raw, "dataset", spec.config_cls, base=base)
    data = spec.load_target()(config)
    if not getattr(data, "labels", ()):
        raise ConfigError([f"dataset {name!r} has no class labels; the classifier needs some"])
    settings: dict[str, Any] = make_converter(ctx.registry).unstructure(config)
    return data, settings


def _bar(total: int, desc: str, quiet: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, unit="clip", desc=desc, disable=quiet, leave=False)


# -- classifier train / test -------------------------------------------------------------------
def _train(args: argparse.Namespace, ctx: CommandContext) -> int:
    from audio_core.io import write_text
    from audio_core.resolve import sections_of, structure_section

    from .audio import load_split
    from .config import ClassifierConfig
    from .errors import MetricsError
    from .training import TrainSettings, pick_device, predict, train_classifier

    raw = sections_of(args.overrides, ("dataset", "classifier"))
    output: Path = args.output
    if output.exists() and any(output.iterdir()) and not args.force:
        raise MetricsError(f"{output}: exists and is not empty; pass --force or another --output")
    device = pick_device(args.device)
    announce(set_threads(args.threads), quiet=args.quiet)
    preset = PRESETS[args.preset]
    config = structure_section(ctx.registry, raw, "classifier", ClassifierConfig, base=preset)
    data, dataset_settings = build_dataset(ctx, args.dataset, {}, raw)
    loaded = {}
    for split in ("train", "val", "test"):
        n = len(data.splits[split])
        with _bar(n, f"loading {split}", args.quiet) as bar:
            loaded[split] = load_split(data, split, clip_len=config.clip_len, progress=bar.update)
    settings = TrainSettings(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        augment=not args.no_augment,
    )
    ctx.print(
        f"classifier: {args.preset} on {args.dataset} ({len(loaded['train'][1])} train, "
        f"{len(loaded['val'][1])} val clips), {settings.epochs} epochs on {device}"
    )
    best = train_classifier(
        config,
        settings,
        train=loaded["train"],
        val=loaded["val"],
        labels=tuple(data.labels),
        dataset={"name": args.dataset, "config": dataset_settings},
        output=output,
        device=device,
        progress=not args.quiet,
        out=ctx.stdout,
    )
    from .classifier import SC09Classifier

    model = SC09Classifier(config, len(data.labels)).to(device)
    model.load_state_dict(best["model"])
    pred = predict(model, loaded["test"][0], batch=args.batch, device=device)
    acc = float((pred == loaded["test"][1]).float().mean())
    write_text(output / "test.txt", f"test accuracy of best.pt: {acc:.4f}\n")
    ctx.print(
        f"best.pt: epoch {best['epoch']}, val acc {best['val_acc']:.2%}, test acc {acc:.2%} "
        f"({output / 'best.pt'})"
    )
    return 0


def _test(args: argparse.Namespace, ctx: CommandContext) -> int:
    import json

    from audio_core.resolve import sections_of

    from .audio import load_split
    from .training import confusion, load_classifier, pick_device, predict

    device = pick_device(args.device)
    announce(set_threads(args.threads), quiet=args.quiet)
    model, payload, _ = load_classifier(args.checkpoint, device, pad_mode=args.mel_padding)
    raw = sections_of(args.overrides, ("dataset",))
    name = args.dataset or payload["dataset"]["name"]
    base = payload["dataset"]["config"] if args.dataset is None else {}
    data, _ = build_dataset(ctx, name, base, raw)
    labels = list(payload["labels"])
    if list(data.labels) != labels:
        raise ConfigError(
            [f"dataset {name!r} has classes {list(data.labels)}; the classifier knows {labels}"]
        )
    n = len(data.splits[args.split])
    with _bar(n, f"loading {args.split}", args.quiet) as bar:
        waves, target = load_split(
            data, args.split, clip_len=model.config.clip_len, progress=bar.update
        )
    pred = predict(model, waves, batch=args.batch, device=device)
    matrix = confusion(pred, target, len(labels))
    acc = float((pred == target).float().mean())
    if args.json:
        ctx.print(
            json.dumps(
                {
                    "checkpoint": str(args.checkpoint),
                    "dataset": name,
                    "split": args.split,
                    "n": n,
                    "accuracy": acc,
                    "labels": labels,
                    "confusion": matrix.tolist(),
                },
                indent=2,
            )
        )
        return 0
    ctx.print(f"{args.split} accuracy: {acc:.2%} ({int((pred == target).sum())}/{n})")
    width = max(5, *(len(label) for label in labels))
    ctx.print("rows: true class, columns: predicted class")
    ctx.print(" " * width + " " + " ".join(label[:5].rjust(5) for label in labels))
    for i, label in enumerate(labels):
        ctx.print(label.ljust(width) + " " + " ".join(f"{int(c):5d}" for c in matrix[i]))
    return 0


# -- evaluate ----------------------------------------------------------------------------------
def _evaluate(args: argparse.Namespace, ctx: CommandContext) -> int:
    import numpy as np

    from audio_core.resolve import sections_of, structure_section

    from .audio import folder_batches, split_batches, wav_files
    from .errors import MetricsError
    from .evaluate import (
        class_shares,
        compute_row,
        directions_of,
        format_table,
        metric_reporting,
        print_lines,
        read_loglik,
        run_threshold,
        write_class_chart,
        write_json,
    )
    from .features import cached_features, default_cache_dir, extract, folder_key, split_key
    from .training import load_classifier, pick_device

    if args.samples is None and not args.dataset_metrics:
        raise MetricsError("evaluate: pass --samples DIR, --dataset-metrics, or both")
    thresholding = args.threshold or args.threshold_fixed is not None
    if thresholding and args.samples is None:
        raise MetricsError("--threshold needs --samples DIR (with its manifest.json)")
    output: Path | None = args.output or args.samples
    if output is None:
        output = Path("runs/dataset-metrics")
    if (output / "metrics.json").exists() and not args.force:
        raise MetricsError(f"{output / 'metrics.json'}: exists; pass --force to replace it")
    probs_file = None
    if args.save_probs is not None:
        if args.samples is None:
            raise MetricsError("--save-probs needs --samples DIR")
        if args.save_probs.exists() and not args.save_probs.is_dir():
            raise MetricsError(f"--save-probs {args.save_probs}: is a file; name a folder")
        probs_file = args.save_probs / f"{args.samples.resolve().name}.npy"
        if probs_file.exists() and not args.force:
            raise MetricsError(f"{probs_file}: exists; pass --force to replace it")
    metric_names = set(ctx.registry.names("metrics"))
    raw = sections_of(args.overrides, ("dataset", *metric_names))
    metrics = {}
    for name in sorted(metric_names):
        spec = ctx.registry.get("metrics", name)
        metrics[name] = spec.load_target()(
            structure_section(ctx.registry, raw, name, spec.config_cls)
        )
    if args.threshold_fixed is not None:
        lo, hi = args.threshold_fixed
        if not 0 <= lo < hi <= 1:
            raise MetricsError(f"--threshold-fixed LO HI: need 0 <= LO < HI <= 1; got {lo} {hi}")
    objective = metric_reporting(metrics, args.threshold_metric) if thresholding else None
    files = wav_files(args.samples) if args.samples is not None else []

    device = pick_device(args.device)
    announce(set_threads(args.threads), quiet=args.quiet)
    model, payload, digest = load_classifier(args.classifier, device, pad_mode=args.mel_padding)
    cache = None if args.no_cache else (args.cache_dir or default_cache_dir())
    name = args.dataset or payload["dataset"]["name"]
    base = payload["dataset"]["config"] if args.dataset is None else {}
    data, dataset_settings = build_dataset(ctx, name, base, raw)
    clip_len, rate = model.config.clip_len, model.config.sample_rate
    reused: dict[str, bool] = {}

    def split_features(split: str) -> Any:
        dataset = data.splits[split]
        key = split_key(digest, name, dataset_settings, split, getattr(dataset, "files", None))

        def compute() -> Any:
            with _bar(len(dataset), f"features {split}", args.quiet) as bar:
                batches = split_batches(
                    data, split, clip_len=clip_len, batch=args.batch, progress=bar.update
                )
                return extract(model, batches, device=device)

        features, hit = cached_features(key, compute, cache)
        reused[split] = hit
        return features

    reference = split_features("train")
    rows: dict[str, dict[str, float]] = {}
    shares: dict[str, Any] = {}
    report: dict[str, Any] = {
        "classifier": {"path": str(args.classifier), "sha256": digest},
        "reference": {"dataset": name, "split": "train", "n": len(reference)},
        "dataset_config": dataset_settings,
        "seed": args.seed,
        "metric_configs": {k: raw.data.get(k, {}) for k in sorted(metrics)},
        "thresholding": False,
    }
    if args.samples is not None:

        def compute_samples() -> Any:
            with _bar(len(files), "features samples", args.quiet) as bar:
                batches = folder_batches(
                    files, sample_rate=rate, clip_len=clip_len, batch=args.batch
                )
                return extract(model, batches, device=device, progress=bar.update)

        samples, hit = cached_features(folder_key(digest, files), compute_samples, cache)
        reused["samples"] = hit
        report["samples"] = {"folder": str(args.samples), "n": len(samples)}
        if probs_file is not None:
            from .evaluate import write_probs

            write_probs(probs_file, samples)
            report["probs_file"] = str(probs_file)
            ctx.print(f"wrote {probs_file} ({len(samples)} rows, sorted file-name order)")
        if thresholding:
            loglik = read_loglik(args.samples, samples.names)
            fixed = None
            if args.threshold_fixed is not None:
                fixed = (float(args.threshold_fixed[0]), float(args.threshold_fixed[1]))
            assert objective is not None
            cutoffs, kept = run_threshold(
                objective,
                samples,
                loglik,
                reference,
                key=args.threshold_metric,
                seed=args.seed,
                fixed=fixed,
            )
            report["thresholding"] = cutoffs.as_dict()
            ctx.print(
                f"thresholding: kept log-likelihoods in [{cutoffs.lo:.2f}, {cutoffs.hi:.2f}] "
                f"quantiles ({'tuned' if cutoffs.tuned else 'fixed'}, {cutoffs.metric} on "
                f"{cutoffs.n_tune} samples); reporting on {cutoffs.n_kept} of the other "
                f"{cutoffs.n_eval}"
            )
            rows["samples (all)"] = compute_row(metrics, samples, reference, args.seed)
            rows["samples (thresholded)"] = compute_row(metrics, kept, reference, args.seed)
            shares["samples (thresholded)"] = class_shares(kept.probs)
        else:
            rows["samples"] = compute_row(metrics, samples, reference, args.seed)
            shares["samples"] = class_shares(samples.probs)
    if args.dataset_metrics:
        rows["train"] = compute_row(metrics, reference, reference, args.seed)
        test = split_features("test")
        rows["test"] = compute_row(metrics, test, reference, args.seed)
        shares["test"] = class_shares(test.probs)
    labels = list(payload["labels"])
    if reference.labels is not None:
        train_share = np.bincount(reference.labels, minlength=len(labels)) / len(reference)
    else:
        train_share = class_shares(reference.probs)
    shares = {"train (labels)": train_share, **shares}
    report["directions"] = directions_of(metrics)
    report["rows"] = rows
    report["class_shares"] = {"labels": labels, **shares}
    report["features_from_cache"] = reused
    output.mkdir(parents=True, exist_ok=True)
    write_class_chart(output / "class_distribution.png", labels, shares)
    write_json(output / "metrics.json", report)
    print_lines(format_table(rows, report["directions"]), ctx.stdout)
    cached = [k for k, hit in reused.items() if hit]
    if cached:
        print(f"note: features reused from the cache for {', '.join(cached)}", file=sys.stderr)
    ctx.print(f"wrote {output / 'metrics.json'} and {output / 'class_distribution.png'}")
    return 0
