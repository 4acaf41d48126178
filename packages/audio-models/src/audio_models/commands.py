"""``audio-run checkpoint import``: the reference's released checkpoints as ours.

Added through the ``register_commands`` hook; torch is imported only inside the handler.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from audio_core.errors import CheckpointError, ConfigError

if TYPE_CHECKING:
    from audio_core.commands import CommandContext

_IMPORT_EPILOG = """\
examples:
  audio-run checkpoint import sashimi_sc09.pt --output runs/imported/sashimi_sc09.pt
  audio-run checkpoint import wavenet_sc09.pt --preset wavenet-sc09 --output wavenet.pt --check
  audio-run generate --checkpoint runs/imported/sashimi_sc09.pt generate.n_samples=4
  audio-run checkpoint import exp/sashimi/checkpoint/800000.pkl --output diffwave.pt

The model's sizes are read off the file's shapes (and printed); the preset (given, or
inferred from the model and its training length) supplies the dataset and training settings.
KEY=VALUE overrides (model.layers=3) apply last."""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    checkpoint = subparsers.add_parser(
        "checkpoint",
        help="import the reference implementation's checkpoints",
        description="Checkpoints of other code. See `audio-run checkpoint import --help`.",
        allow_abbrev=False,
    )
    checkpoint.set_defaults(handler=lambda args, context: _usage(checkpoint))
    actions = checkpoint.add_subparsers(dest="checkpoint_command", metavar="ACTION")
    imp = actions.add_parser(
        "import",
        help="convert a reference checkpoint (SaShiMi, WaveNet, SampleRNN, DiffWave)",
        description="Read a checkpoint of the reference implementations (state-spaces/s4: "
        "checkpoints/<model>_<dataset>.pt, either code version; albertfgu/diffwave-sashimi: "
        "<iteration>.pkl, master or checkpoints branch), map every key onto our model and "
        "write one of our self-describing checkpoints, usable by generate, test and train "
        "--resume's model loading.",
        epilog=_IMPORT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    imp.add_argument("file", type=Path, metavar="FILE", help="the reference checkpoint")
    imp.add_argument(
        "--output", type=Path, required=True, metavar="OUT.pt", help="where our checkpoint goes"
    )
    imp.add_argument(
        "--preset", metavar="NAME", help="the experiment it came from (default: inferred)"
    )
    imp.add_argument(
        "--check",
        action="store_true",
        help="also run the model in convolutional and recurrent mode on a short input and "
        "report the largest difference (relative to the logits' RMS; skipped for DiffWave, "
        "which has no recurrent mode)",
    )
    imp.add_argument("--force", action="store_true", help="replace an existing OUT.pt")
    imp.add_argument(
        "overrides", nargs="*", metavar="KEY=VALUE", help="settings applied last (model.layers=3)"
    )
    imp.set_defaults(handler=_import)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_usage()
    print("audio-run checkpoint: error: name an action: import", file=sys.stderr)
    return 2


def _read(path: Path) -> dict[str, Any]:
    import torch

    if not path.is_file():
        raise CheckpointError([f"{path}: no such file"])
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means the same thing
        raise CheckpointError(
            [f"{path}: not a plain state dict of tensors ({type(exc).__name__}: {exc})"]
        ) from None
    if isinstance(data, dict) and isinstance(data.get("state_dict"), dict):
        data = data["state_dict"]  # a Lightning .ckpt
    if isinstance(data, dict) and isinstance(data.get("model_state_dict"), dict):
        data = data["model_state_dict"]  # a DiffWave <iteration>.pkl
    if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
        raise CheckpointError([f"{path}: not a state dict (a mapping of names to tensors)"])
    return data


def _merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _import(args: argparse.Namespace, ctx: CommandContext) -> int:
    import torch

    from audio_core.io import sha256_of
    from audio_core.resolve import unstructure
    from audio_core.runner.checkpoint import save_checkpoint
    from audio_core.specs import PresetSpec
    from audio_core.versions import package_versions

    from .reference import (
        ReferenceFormatError,
        detect_layout,
        infer_model,
        infer_preset,
        load_reference_state,
    )
    from .samplernn import dequantize

    output: Path = args.output
    if output.exists() and not args.force:
        raise CheckpointError([f"{output} already exists; pass --force to replace it"])
    state = _read(args.file)
    try:
        layout = detect_layout(state)
        inferred, notes = infer_model(state, layout)
    except ReferenceFormatError as exc:
        raise CheckpointError([f"{args.file}: {exc}"]) from None
    preset_name = args.preset or infer_preset(inferred, layout)
    spec = ctx.registry.get("presets", preset_name)
    assert isinstance(spec, PresetSpec), f"{spec!r} is not a preset"
    base = _merge(spec.load(), {"model": inferred})
    if base["model"]["name"] != inferred["name"]:
        raise ConfigError(
            [f"--preset {preset_name} is a {base['model']['name']} model; {args.file} holds a "
             f"{inferred['name']}"]
        )  # fmt: skip
    config = ctx.resolve_config(
        argparse.Namespace(overrides=args.overrides),
        base=base,
        base_origin=f"{args.file} (preset {preset_name})",
    )
    how = "given" if args.preset else "inferred"
    ctx.print(f"{args.file}: {layout} layout; preset {preset_name} ({how})")
    sizes = {k: v for k, v in inferred.items() if k != "name"}
    ctx.print("  model: " + ", ".join(f"{k}={v}" for k, v in sizes.items()))
    for note in notes:
        ctx.print(f"  note: {note}")
    model = config.model.build()
    try:
        load_reference_state(model, state, layout)
    except ReferenceFormatError as exc:
        raise CheckpointError(
            [f"{args.file} does not match {config.model.name} as configured: {exc}"]
        ) from None
    data_config = config.dataset.config
    bits = int(getattr(data_config, "bits", getattr(config.model.config, "bits", 8)))
    kind = str(getattr(data_config, "quantization", "mu-law"))
    table = dequantize(
        torch.arange(2**bits), bits, "linear" if kind == "linear" else "mu-law", torch.float64
    ).float()
    save_checkpoint(
        output,
        {
            "model": model.state_dict(),
            "config": unstructure(config),
            "versions": package_versions(),
            "decode_table": table,
            "sample_rate": int(getattr(data_config, "sample_rate", 16000)),
            "model_name": config.model.name,
            "dataset_name": config.dataset.name,
            "step": 0,
            "epoch": 0,
            "imported_from": {
                "file": str(args.file),
                "sha256": sha256_of(args.file),
                "layout": layout,
                "preset": preset_name,
            },
        },
    )
    ctx.print(f"wrote {output} ({sum(p.numel() for p in model.parameters()):,} parameters)")
    if args.check and not hasattr(model, "step"):
        ctx.print("  check: skipped (a diffusion model has no recurrent mode to compare)")
    elif args.check:
        error = conv_step_error(model, length=256)
        ctx.print(f"  check: recurrent vs convolutional logits differ by {error:.1e} of their RMS")
    return 0


def conv_step_error(model: Any, *, length: int, seed: int = 0) -> float:
    """Largest difference between the teacher-forced logits and the recurrent mode's on
    ``length`` random tokens, relative to the logits' RMS."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    x = torch.randint(0, model.n_classes, (1, length), generator=generator)
    model.eval()
    with torch.no_grad():
        reference = model.logits(x)
        model.setup_rnn("linear")
        state = model.default_state(1)
        prev = torch.full((1,), model.start_token, dtype=torch.long)
        steps = []
        for t in range(length):
            logits, state = model.step(prev, state)
            steps.append(logits)
            prev = x[:, t]
        stepped = torch.stack(steps, 1)
    rms = float(reference.double().pow(2).mean().sqrt())
    return float((stepped - reference).abs().max()) / max(rms, math.ulp(1.0))
