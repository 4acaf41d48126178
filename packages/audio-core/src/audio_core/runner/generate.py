"""``audio-run generate``: sample from a checkpoint, as the SaShiMi reference's generate.py.

Writes ``n_samples * n_reps`` 16-bit wavs whose names sort by exact log-likelihood, lowest
first (``0000_ll-12345.678.wav``: rank, then the log-likelihood in nats), plus
``manifest.json`` and ``manifest.csv`` with every clip's log-likelihood, its prefix, the seed
and the settings, and ``codes.pt`` (the exact classes, one row per clip in rank order).
Everything is written to a temporary sibling folder that is renamed into place at the end: an
output folder is complete or absent, and an existing one is replaced only with ``--force``.

Two steps: :func:`sample` runs the model (:class:`Sampled` holds the result), then
:func:`write_samples` writes the folder.
"""

from __future__ import annotations

import csv
import io
import sys
import time
from pathlib import Path
from typing import Any, TextIO

import torch
from attrs import frozen

from audio_core.config import GenerateConfig, RunConfig
from audio_core.errors import TrainingError
from audio_core.io import check_replaceable, dumps_json, replacing_dir, write_wav
from audio_core.protocols import IGNORE_INDEX
from audio_core.registry import Registry
from audio_core.specs import ModelSpec
from audio_core.threads import ThreadChoice, set_threads

from .checkpoint import check_finite, load_model_state

LN2 = 0.6931471805599453


def check_engine(registry: Registry, model_name: str, engine: str) -> None:
    """Refuse, before any work, an engine the model's record does not list.

    Raises:
        TrainingError: naming the model and the engines it supports.
    """
    spec = registry.get("models", model_name)
    engines = spec.engines if isinstance(spec, ModelSpec) else ("eager",)
    if engine != "auto" and engine not in engines:
        raise TrainingError(
            [f"--engine {engine}: model {model_name!r} supports {', '.join(engines)} (or auto)"]
        )


@frozen
class Sampled:
    """Clips generated from a model, in generation order.

    Attributes:
        samples: ``(n, length)`` class indices. log_likelihood: ``(n,)`` float64 (nats).
        prefix_len: leading samples given rather than sampled. sources: per clip, the index
            of the example its prefix came from (``None`` when unconditional).
        engine: how the steps were computed. device: where. seconds: wall time of sampling.
    """

    samples: torch.Tensor
    log_likelihood: torch.Tensor
    prefix_len: int
    sources: list[int | None]
    engine: str
    device: str
    seconds: float


def _prefixes(
    config: RunConfig, device: torch.device
) -> tuple[torch.Tensor | None, list[int | None]]:
    gen = config.generate
    total = gen.n_samples * gen.n_reps
    if not gen.l_prefix:
        return None, [None] * total
    data = config.dataset.build()
    split = data.split(gen.split)
    if len(split) < gen.n_samples:
        raise TrainingError(
            [
                f"generate.n_samples={gen.n_samples} prefixes asked for, but the "
                f"{gen.split} split has {len(split)} examples"
            ]
        )
    firsts = torch.stack([split[i][0][: gen.l_prefix] for i in range(gen.n_samples)])
    # a prefix longer than a short clip reaches its padding: continue from silence there
    firsts = torch.where(firsts == IGNORE_INDEX, 2 ** (int(data.encoding.bits) - 1), firsts)
    prefix = firsts.repeat_interleave(gen.n_reps, dim=0).to(device)
    return prefix, [i // gen.n_reps for i in range(total)]


def sample(
    model: Any,
    config: RunConfig,
    *,
    engine: str = "auto",
    progress: bool = True,
    threads: ThreadChoice | None = None,
) -> Sampled:
    """Generate per ``config.generate`` with a built, loaded ``model`` (``threads``: the
    choice made, printed with the engine)."""
    gen = config.generate
    device = next(model.parameters()).device
    options: dict[str, Any] = {}
    if gen.steps:
        if "steps" not in tuple(getattr(model, "generate_options", ())):
            raise TrainingError(
                [f"generate.steps applies to diffusion models; {config.model.name!r} samples "
                 "one step per sample"]
            )  # fmt: skip
        options["steps"] = gen.steps
    check = getattr(model, "check_generate", None)
    if check is not None:  # the model's own refusals, before any work
        try:
            check(prefix=gen.l_prefix > 0, temperature=gen.temperature, top_p=gen.top_p,
                  engine=engine, **{"steps": 0, **options})  # fmt: skip
        except ValueError as exc:
            raise TrainingError([f"{config.model.name}: {exc}"]) from None
    prefix, sources = _prefixes(config, device)
    total = gen.n_samples * gen.n_reps
    how = f"engine {engine}" + (f", {threads.line()}" if threads is not None else "")
    print(
        f"generating {total} clips of {gen.l_sample} samples on {device} ({how})", file=sys.stderr
    )
    from tqdm import tqdm

    generator = torch.Generator(device=device).manual_seed(gen.seed)
    start = time.perf_counter()
    with tqdm(
        total=total * gen.l_sample,
        unit="sample",
        unit_scale=True,
        desc="generate",
        disable=not progress,
    ) as bar:
        try:
            result = model.generate(
                total,
                gen.l_sample,
                prefix=prefix,
                temperature=gen.temperature,
                top_p=gen.top_p,
                batch=gen.n_batch,
                generator=generator,
                progress=bar.update,
                engine=engine,
                **options,
            )
        except ValueError as exc:  # a setting this model cannot honour
            raise TrainingError([f"{config.model.name}: {exc}"]) from None
    seconds = time.perf_counter() - start
    used = str(getattr(result, "engine", "eager"))
    why = str(getattr(result, "passed_over", ""))  # why auto fell back to the eager step
    used += f" ({why})" if why else ""
    print(f"engine: {used}; threads: {torch.get_num_threads()}", file=sys.stderr)
    return Sampled(
        samples=result.samples.cpu(),
        log_likelihood=torch.as_tensor(result.log_likelihood).cpu(),
        prefix_len=int(result.prefix_len),
        sources=sources,
        engine=used,
        device=str(device),
        seconds=seconds,
    )


def _settings(
    sampled: Sampled, gen: GenerateConfig, config: RunConfig, *, checkpoint: str, step: Any
) -> dict[str, Any]:
    total = gen.n_samples * gen.n_reps
    return {
        "checkpoint": checkpoint,
        "step": step,
        "model": config.model.name,
        "dataset": config.dataset.name,
        "seed": gen.seed,
        "n_samples": gen.n_samples,
        "n_reps": gen.n_reps,
        "l_sample": gen.l_sample,
        "l_prefix": gen.l_prefix,
        "split": gen.split,
        "temperature": gen.temperature,
        "top_p": gen.top_p,
        "n_batch": gen.n_batch,
        "steps": gen.steps,
        "engine": sampled.engine,
        "device": sampled.device,
        "seconds": sampled.seconds,
        "samples_per_s": total * gen.l_sample / max(sampled.seconds, 1e-9),
    }


def write_samples(
    sampled: Sampled,
    *,
    table: torch.Tensor,
    sample_rate: int,
    settings: dict[str, Any],
    n_reps: int,
    conditional: bool,
    output: Path,
    force: bool,
) -> list[dict[str, Any]]:
    """Write the wavs (ranked by log-likelihood, lowest first), ``codes.pt`` and the
    manifests into ``output``, atomically; returns the manifest rows.

    A model that generates waveforms without a likelihood (diffusion) gives float samples
    and NaN likelihoods: its wavs keep the generation order, ``audio.pt`` holds the
    waveforms and the manifest says there is no likelihood order."""
    waveforms = sampled.samples.is_floating_point()
    loglik = sampled.log_likelihood
    order = torch.arange(len(loglik)) if waveforms else torch.argsort(loglik)
    n_generated = sampled.samples.shape[1] - sampled.prefix_len
    rows: list[dict[str, Any]] = []
    with replacing_dir(output, force=force) as tmp:
        for rank, index in enumerate(order.tolist()):
            if waveforms:
                name = f"{rank:04d}.wav"
                write_wav(tmp / name, sampled.samples[index], sample_rate)
                rows.append({"file": name, "rank": rank, "index": index,
                             "log_likelihood": None, "bits_per_sample": None,
                             "prefix_example": None, "rep": None})  # fmt: skip
                continue
            ll = float(loglik[index])
            name = f"{rank:04d}_ll{ll:+.3f}.wav"
            write_wav(tmp / name, table[sampled.samples[index]], sample_rate)
            rows.append(
                {
                    "file": name,
                    "rank": rank,
                    "index": index,
                    "log_likelihood": ll,
                    "bits_per_sample": -ll / max(1, n_generated) / LN2,
                    "prefix_example": sampled.sources[index],
                    "rep": index % n_reps if conditional else None,
                }
            )
        if waveforms:
            torch.save(sampled.samples.float(), tmp / "audio.pt")
            settings = {**settings, "order": "generation order: the model has no likelihood"}
        else:
            settings = {**settings, "order": "log-likelihood, lowest first"}
        if not waveforms:
            torch.save(sampled.samples[order].to(torch.int32), tmp / "codes.pt")
        manifest = {"settings": {**settings, "sample_rate": sample_rate}, "clips": rows}
        (tmp / "manifest.json").write_text(dumps_json(manifest, indent=2))
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
        (tmp / "manifest.csv").write_text(buffer.getvalue())
    return rows


def one_sequence_threads(model: Any, engine: str, device: torch.device) -> bool:
    """Whether the engine that ``engine`` resolves to for one sequence on ``device`` shares its
    step across threads (an engine record's ``one_sequence_threads``: SaShiMi's compiled
    step); ``auto`` takes the first of ``model.engines`` that would pick itself."""
    for name, spec in dict(getattr(model, "engines", {})).items():
        if engine == name or (engine == "auto" and spec.auto(model, 1, device) is None):
            return bool(getattr(spec, "one_sequence_threads", False))
    return False


def generate(
    ckpt: dict[str, Any],
    config: RunConfig,
    registry: Registry,
    *,
    checkpoint: Path,
    output: Path,
    force: bool = False,
    progress: bool = True,
    out: TextIO | None = None,
    engine: str = "auto",
    threads: int = 0,
) -> Path:
    """Generate per ``config.generate`` from a loaded checkpoint ``ckpt`` (read from
    ``checkpoint``) into ``output``; returns it. ``threads`` as ``--threads`` (0: choose;
    one for an autoregressive model sampling one clip at a time on the CPU, whose steps are
    too small to share, unless its engine shares one sequence's step across threads).

    Raises:
        TrainingError: the output cannot be written, or the engine does not apply.
    """
    out = out if out is not None else sys.stdout
    try:
        check_replaceable(output, force=force)
    except FileExistsError as exc:
        raise TrainingError([str(exc)]) from None
    check_engine(registry, config.model.name, engine)
    model = config.model.build()
    load_model_state(model, ckpt["model"], checkpoint)
    check_finite(model, checkpoint)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device).eval()
    stepwise = getattr(model, "input_kind", "codes") != "waveform"
    # One sequence at a time is serial work (tiny steps; the compiled steps split batches of
    # two or more across the threads), unless the engine shares one sequence's step.
    serial = (
        device.type == "cpu"
        and stepwise
        and min(config.generate.n_batch, config.generate.n_samples) == 1
        and not one_sequence_threads(model, engine, device)
    )
    choice = set_threads(threads, serial=serial)
    sampled = sample(model, config, engine=engine, progress=progress, threads=choice)
    gen = config.generate
    settings = _settings(sampled, gen, config, checkpoint=str(checkpoint), step=ckpt.get("step"))
    write_samples(
        sampled,
        table=ckpt["decode_table"],
        sample_rate=int(ckpt["sample_rate"]),
        settings=settings,
        n_reps=gen.n_reps,
        conditional=bool(gen.l_prefix),
        output=output,
        force=force,
    )
    listed = (
        "no likelihoods (generation order)"
        if sampled.samples.is_floating_point()
        else f"log-likelihoods in {output / 'manifest.csv'}"
    )
    print(
        f"wrote {gen.n_samples * gen.n_reps} clips to {output} "
        f"({settings['samples_per_s']:,.0f} samples/s); {listed}",
        file=out,
    )
    return output
