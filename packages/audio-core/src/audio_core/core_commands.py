"""audio-core's own ``audio-run`` commands: ``train``, ``generate``, ``config``, ``list`` and
``plugins``, added by the built-in plugin through ``register_commands``.

Handlers import the runner (torch) and the converter (cattrs) only when they run, so
``audio-run --help``, ``list`` and ``plugins`` stay fast.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ConfigError
from .options import add_run_options
from .specs import ENGINES, KINDS
from .threads import THREADS_HELP, threads_argument

if TYPE_CHECKING:
    from .commands import CommandContext
    from .origins import PluginInfo


def _train(args: argparse.Namespace, ctx: CommandContext) -> int:
    from .runner.train import Trainer, default_run_dir, distributed

    resume: Path | None = args.resume
    if args.reset_optimizer and resume is None:
        raise ConfigError(["--reset-optimizer needs --resume RUN_DIR"])
    if resume is not None:
        if args.model or args.dataset or args.config or args.preset:
            raise ConfigError(
                ["--resume takes the run's own config.toml; only KEY=VALUE overrides may follow"]
            )
        if not (resume / "config.toml").is_file():
            raise ConfigError(
                [f"{resume}: not a run folder (no config.toml); pass the run's folder"]
            )
        args.config = [resume / "config.toml"]
    config = ctx.resolve_config(args)
    from .threads import set_threads

    threads = set_threads(args.threads)
    with distributed():
        run_dir = resume if resume is not None else _shared_run_dir(default_run_dir(config))
        trainer = Trainer(
            config,
            ctx.registry,
            run_dir=run_dir,
            resume=resume is not None,
            reset_optimizer=args.reset_optimizer,
            progress=not args.quiet,
            out=ctx.stdout,
            threads=threads,
        )
        return trainer.run()


def _shared_run_dir(path: Path) -> Path:
    """Under torchrun, every process uses rank 0's run folder name."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return path
    shared = [path]
    dist.broadcast_object_list(shared, src=0)
    return Path(shared[0])


def _generate(args: argparse.Namespace, ctx: CommandContext) -> int:
    from .runner.checkpoint import load_checkpoint
    from .runner.generate import check_engine, generate

    bad = [o for o in args.overrides if not o.startswith("generate.")]
    if bad:
        raise ConfigError([f"generate takes only generate.* overrides; got {', '.join(bad)}"])
    checkpoint: Path = args.checkpoint
    ckpt = load_checkpoint(checkpoint)
    if not isinstance(ckpt["config"], dict):
        raise ConfigError([f"{checkpoint}: its 'config' is not a table"])
    config = ctx.resolve_config(args, base=ckpt["config"], base_origin=f"checkpoint {checkpoint}")
    check_engine(ctx.registry, config.model.name, args.engine)
    output = args.output
    if output is None:
        output = checkpoint.parent.parent / "samples" / checkpoint.stem
    generate(
        ckpt,
        config,
        ctx.registry,
        checkpoint=checkpoint,
        output=output,
        force=args.force,
        progress=not args.quiet,
        out=ctx.stdout,
        engine=args.engine,
        threads=args.threads,
    )
    return 0


def _test(args: argparse.Namespace, ctx: CommandContext) -> int:
    from .runner.checkpoint import load_checkpoint
    from .runner.scoring import format_report, score_checkpoint

    bad = [o for o in args.overrides if not o.startswith("dataset.")]
    if bad:
        raise ConfigError([f"test takes only dataset.* overrides; got {', '.join(bad)}"])
    if args.batch_size < 1 or args.max_batches < 0:
        raise ConfigError(["--batch-size must be at least 1 and --max-batches at least 0"])
    checkpoint: Path = args.checkpoint
    ckpt = load_checkpoint(checkpoint)
    if not isinstance(ckpt["config"], dict):
        raise ConfigError([f"{checkpoint}: its 'config' is not a table"])
    config = ctx.resolve_config(args, base=ckpt["config"], base_origin=f"checkpoint {checkpoint}")
    from .threads import set_threads

    threads = set_threads(args.threads)
    report = score_checkpoint(ckpt, config, checkpoint=checkpoint, split=args.split,
                              batch_size=args.batch_size, max_batches=args.max_batches,
                              progress=not args.quiet, threads=threads)  # fmt: skip
    if args.json:
        ctx.print(json.dumps(report, indent=2))
    else:
        ctx.print(*format_report(report))
    return 0


def _config(args: argparse.Namespace, ctx: CommandContext) -> None:
    from .resolve import to_toml

    config = ctx.resolve_config(args)
    ctx.print(
        f"# Resolved by audio-run (sashimi-audio-core {ctx.core_version}); "
        "reuse it with: audio-run --config FILE",
        to_toml(config).rstrip("\n"),
    )


def _table(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return [
        "  ".join(
            [*(cell.ljust(w) for cell, w in zip(row, widths, strict=False)), row[-1]]
        ).rstrip()
        for row in rows
    ]


def _list(args: argparse.Namespace, ctx: CommandContext) -> None:
    registry = ctx.registry
    kinds = [args.kind] if args.kind else list(KINDS)
    if args.json:
        listing: dict[str, list[dict[str, Any]]] = {}
        for kind in kinds:
            listing[kind] = []
            for name, spec in registry.specs(kind).items():
                provider = registry.provider(kind, name)
                listing[kind].append(
                    {
                        "name": name,
                        "aliases": list(spec.aliases),
                        "summary": spec.summary,
                        "target": spec.target,
                        "config": f"{spec.config_cls.__module__}.{spec.config_cls.__qualname__}",
                        "plugin": provider.name if provider else None,
                        "distribution": provider.dist if provider else None,
                        "version": provider.version if provider else None,
                    }
                )
        ctx.print(json.dumps(listing, indent=2))
        return
    for index, kind in enumerate(kinds):
        specs = registry.specs(kind)
        ctx.print(("\n" if index else "") + f"{kind}:")
        if not specs:
            ctx.print("  (none installed)")
            continue
        rows = []
        for name, spec in specs.items():
            provider = registry.provider(kind, name)
            aliases = f" (aliases: {', '.join(spec.aliases)})" if spec.aliases else ""
            rows.append(["  " + name, provider.label if provider else "?", spec.summary + aliases])
        ctx.print(*_table(rows))


def _plugin_record(info: PluginInfo, ctx: CommandContext) -> dict[str, Any]:
    pm = ctx.plugin_manager
    plugin = pm.get_plugin(info.name)
    hooks = sorted(caller.name for caller in pm.get_hookcallers(plugin) or [])
    provides: dict[str, list[str]] = dict(ctx.registry.provided_by(info.name).items())
    provides["commands"] = sorted(ctx.commands.get(info.name, []))
    return {
        "name": info.name,
        "distribution": info.dist,
        "version": info.version,
        "module": info.module,
        "source": info.source,
        "hooks": hooks,
        "provides": provides,
    }


def _plugins(args: argparse.Namespace, ctx: CommandContext) -> None:
    records = [_plugin_record(info, ctx) for info in ctx.plugin_manager.infos()]
    disabled = list(ctx.plugin_manager.disabled)
    if args.json:
        ctx.print(json.dumps({"plugins": records, "disabled": disabled}, indent=2))
        return
    rows = [["PLUGIN", "DISTRIBUTION", "SOURCE", "PROVIDES"]]
    for record in records:
        dist = (
            f"{record['distribution']}=={record['version']}"
            if record["distribution"]
            else f"module {record['module']}"
        )
        provided = "; ".join(
            f"{kind}: {', '.join(names)}" for kind, names in record["provides"].items() if names
        )
        rows.append([record["name"], dist, record["source"], provided or "-"])
    ctx.print(*_table(rows))
    if disabled:
        ctx.print(f"disabled (AUDIO_RUN_DISABLE_PLUGINS): {', '.join(disabled)}")


def register_core_commands(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    """Add ``train``, ``config``, ``list`` and ``plugins`` (audio-core's own commands)."""
    train = subparsers.add_parser(
        "train",
        help="train a model (the default command: `audio-run --model M --dataset D` trains)",
        description="Train a model on a dataset. `audio-run [train] --model M --dataset D`.",
        epilog="examples:\n  audio-run --model sashimi --dataset sc09 train.batch_size=8\n"
        "  audio-run train --config base.toml model.d_model=128",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    add_run_options(train)
    train.add_argument(
        "--resume",
        type=Path,
        metavar="RUN_DIR",
        help="continue the run in RUN_DIR from its checkpoints/last.pt (bit-exact on CPU)",
    )
    train.add_argument(
        "--reset-optimizer",
        action="store_true",
        help="with --resume: start a fresh optimizer from the checkpoint's weights (when its "
        "saved state does not fit, e.g. after changing train.optimizer.name)",
    )
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.add_argument("--threads", type=threads_argument, default=0, metavar="N",
                       help=THREADS_HELP)  # fmt: skip
    train.set_defaults(handler=_train)

    generate = subparsers.add_parser(
        "generate",
        help="sample clips from a checkpoint, sorted by log-likelihood",
        description="Generate clips from a checkpoint as the SaShiMi reference's generate.py "
        "does: unconditionally, or continuing generate.l_prefix samples of the first "
        "generate.n_samples examples of generate.split, each generate.n_reps times. Writes "
        "16-bit wavs named so that they sort by exact log-likelihood (lowest first; a "
        "diffusion model's in generation order, with generate.steps for a shorter schedule) "
        "and a manifest (JSON and CSV) of log-likelihoods, seeds and settings.",
        epilog="examples:\n  audio-run generate --checkpoint runs/R/checkpoints/best.pt\n"
        "  audio-run generate --checkpoint C.pt --output samples/ generate.n_samples=4 "
        "generate.l_sample=32000 generate.l_prefix=8000 generate.top_p=0.95",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    generate.add_argument(
        "--checkpoint",
        type=Path,
        required=True,
        metavar="PATH",
        help="a checkpoint written by audio-run train",
    )
    generate.add_argument(
        "--output",
        type=Path,
        metavar="DIR",
        help="output folder (default: RUN_DIR/samples/<checkpoint name>)",
    )
    generate.add_argument("--force", action="store_true", help="replace an existing folder")
    generate.add_argument("--quiet", action="store_true", help="no progress bar")
    generate.add_argument("--threads", type=threads_argument, default=0, metavar="N",
                          help=THREADS_HELP + "; auto takes 1 to sample one clip at a time "
                          "on the CPU (the compiled steps split larger batches across the "
                          "threads), except with SaShiMi's compiled step, whose threads "
                          "share each step of one clip")  # fmt: skip
    generate.add_argument(
        "--engine",
        choices=ENGINES,
        default="auto",
        help="how steps are computed: auto (default: the fastest the model supports here, "
        "printed), eager (the model's own step, the reference path), compiled (SaShiMi and "
        "WaveNet on the CPU: a fused C step built with the machine's C compiler; SampleRNN: "
        "its weights folded once), triton (SaShiMi on CUDA GPUs: one Triton kernel per tier "
        "step, one CUDA graph per 16-sample period, sampling on the GPU)",
    )
    generate.add_argument(
        "overrides",
        nargs="*",
        default=[],
        metavar="generate.KEY=VALUE",
        help="override a generate setting, e.g. generate.n_samples=4",
    )
    generate.set_defaults(handler=_generate)

    test = subparsers.add_parser(
        "test",
        help="a checkpoint's NLL (bits/sample) and accuracy over a whole split",
        description="Score a checkpoint on every clip of a split, teacher-forced, as the paper "
        "reports test NLL: mean next-sample cross-entropy in bits per sample (padding left "
        "out), next-sample accuracy and accuracy@3/5/10.",
        epilog="examples:\n  audio-run test --checkpoint runs/R/checkpoints/best.pt\n"
        "  audio-run test --checkpoint C.pt --split val --json dataset.root=data/sc09",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    test.add_argument("--checkpoint", type=Path, required=True, metavar="PATH",
                      help="a checkpoint written by audio-run train (or imported)")  # fmt: skip
    test.add_argument("--split", choices=["train", "val", "test"], default="test",
                      help="which split (default test)")  # fmt: skip
    test.add_argument("--batch-size", type=int, default=16, help="clips per batch (16)")
    test.add_argument("--max-batches", type=int, default=0,
                      help="stop after this many batches (0: the whole split)")  # fmt: skip
    test.add_argument("--json", action="store_true", help="print JSON instead of a table")
    test.add_argument("--quiet", action="store_true", help="no progress bar")
    test.add_argument("--threads", type=threads_argument, default=0, metavar="N",
                      help=THREADS_HELP)  # fmt: skip
    test.add_argument("overrides", nargs="*", default=[], metavar="dataset.KEY=VALUE",
                      help="override a dataset setting, e.g. dataset.root=data/sc09")  # fmt: skip
    test.set_defaults(handler=_test)

    config = subparsers.add_parser(
        "config",
        help="print the resolved run configuration as TOML",
        description="Resolve the configuration exactly as `train` would and print it as TOML. "
        "Problems are reported one per line with their $.path; the exit status is then 2.",
        allow_abbrev=False,
    )
    add_run_options(config)
    config.set_defaults(handler=_config)

    listing = subparsers.add_parser(
        "list",
        help="list registered kernels, backbones, models, datasets or metrics",
        description="List what the installed plugins register, with the providing "
        "distribution. Lists every kind when KIND is omitted.",
        allow_abbrev=False,
    )
    listing.add_argument(
        "kind", nargs="?", choices=KINDS, metavar="KIND", help=f"one of {', '.join(KINDS)}"
    )
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    listing.set_defaults(handler=_list)

    plugins = subparsers.add_parser(
        "plugins",
        help="list loaded plugins, their distributions and what they provide",
        description="List every loaded plugin: its name, distribution and version, how it was "
        "loaded, the hooks it implements and what it provides.",
        allow_abbrev=False,
    )
    plugins.add_argument("--json", action="store_true", help="print JSON instead of a table")
    plugins.set_defaults(handler=_plugins)
