"""``audio-run generate``: sample from a checkpoint, as the SaShiMi reference's generate.py.

Writes ``n_samples * n_reps`` 16-bit wavs whose names sort by exact log-likelihood, lowest
first (``0000_ll-12345.678.wav``: rank, then the log-likelihood in nats), plus
``manifest.json`` and ``manifest.csv`` with every clip's log-likelihood, its prefix, the seed
and the settings, and ``codes.pt`` (the exact classes, one row per clip in rank order).
Everything is written to a temporary sibling folder that is renamed into place at the end: an
output folder is complete or absent, and an existing one is replaced only with ``--force``.
"""

from __future__ import annotations

import csv
import inspect
import io
import json
import os
import shutil
import sys
import tempfile
import time
import wave
from pathlib import Path
from typing import Any, TextIO

import torch

from audio_core.config import RunConfig
from audio_core.registry import Registry

from .checkpoint import load_checkpoint, load_model_state
from .train import TrainingError


def write_wav(path: Path, samples: torch.Tensor, sample_rate: int) -> None:
    """Mono 16-bit PCM with the standard library's ``wave``."""
    pcm = (samples.clamp(-1, 1) * 32767).round().to(torch.int16).numpy().tobytes()
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(sample_rate)
        handle.writeframes(pcm)


def generate(
    checkpoint: Path,
    config: RunConfig,
    registry: Registry,
    *,
    output: Path,
    force: bool = False,
    progress: bool = True,
    out: TextIO | None = None,
    engine: str = "auto",
) -> Path:
    """Generate per ``config.generate`` from ``checkpoint`` into ``output``; returns it.

    ``engine`` is passed to the model's ``generate`` (``auto``, ``eager``, ``compiled`` for the
    audio-models ones); a model whose ``generate`` takes no engine runs its own way and only
    accepts ``auto`` or ``eager``.
    """
    out = out if out is not None else sys.stdout
    gen_cfg = config.generate
    if output.exists() and not force:
        raise TrainingError([f"{output} already exists; pass --force to replace it"])
    ckpt = load_checkpoint(checkpoint)
    model = registry.get("models", config.model.name).load_target()(config.model.config)
    load_model_state(model, ckpt["model"], checkpoint)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device).eval()
    table: torch.Tensor = ckpt["decode_table"]
    sample_rate = int(ckpt["sample_rate"])
    total = gen_cfg.n_samples * gen_cfg.n_reps
    prefix = None
    sources: list[int | None] = [None] * total
    if gen_cfg.l_prefix:
        data = registry.get("datasets", config.dataset.name).load_target()(config.dataset.config)
        split = data.split(gen_cfg.split)
        if len(split) < gen_cfg.n_samples:
            raise TrainingError(
                [
                    f"generate.n_samples={gen_cfg.n_samples} prefixes asked for, but the "
                    f"{gen_cfg.split} split has {len(split)} examples"
                ]
            )
        firsts = torch.stack([split[i][0][: gen_cfg.l_prefix] for i in range(gen_cfg.n_samples)])
        prefix = firsts.repeat_interleave(gen_cfg.n_reps, dim=0).to(device)
        sources = [i // gen_cfg.n_reps for i in range(total)]
    from tqdm import tqdm

    takes_engine = "engine" in inspect.signature(model.generate).parameters
    if not takes_engine and engine not in ("auto", "eager"):
        raise TrainingError(
            [f"--engine {engine}: model {config.model.name!r} has one generation path (eager)"]
        )
    print(
        f"generating {total} clips of {gen_cfg.l_sample} samples on {device} (engine {engine})",
        file=sys.stderr,
    )
    options = {"engine": engine} if takes_engine else {}
    generator = torch.Generator(device=device).manual_seed(gen_cfg.seed)
    start = time.perf_counter()
    with tqdm(
        total=total * gen_cfg.l_sample,
        unit="sample",
        unit_scale=True,
        desc="generate",
        disable=not progress,
    ) as bar:
        result = model.generate(
            total,
            gen_cfg.l_sample,
            prefix=prefix,
            temperature=gen_cfg.temperature,
            top_p=gen_cfg.top_p,
            batch=gen_cfg.n_batch,
            generator=generator,
            progress=bar.update,
            **options,
        )
    elapsed = time.perf_counter() - start
    engine = str(getattr(result, "engine", "eager"))
    print(f"engine: {engine}", file=sys.stderr)
    samples = result.samples.cpu()
    loglik = result.log_likelihood.cpu()
    order = torch.argsort(loglik)  # lowest first, as the reference sorts
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=output.parent, prefix=f".{output.name}.tmp-"))
    try:
        rows: list[dict[str, Any]] = []
        n_generated = gen_cfg.l_sample - result.prefix_len
        for rank, index in enumerate(order.tolist()):
            ll = float(loglik[index])
            name = f"{rank:04d}_ll{ll:+.3f}.wav"
            write_wav(tmp / name, table[samples[index]], sample_rate)
            rows.append(
                {
                    "file": name,
                    "rank": rank,
                    "index": index,
                    "log_likelihood": ll,
                    "bits_per_sample": -ll / max(1, n_generated) / 0.6931471805599453,
                    "prefix_example": sources[index],
                    "rep": index % gen_cfg.n_reps if gen_cfg.l_prefix else None,
                }
            )
        settings = {
            "checkpoint": str(checkpoint),
            "step": ckpt.get("step"),
            "model": config.model.name,
            "dataset": config.dataset.name,
            "seed": gen_cfg.seed,
            "n_samples": gen_cfg.n_samples,
            "n_reps": gen_cfg.n_reps,
            "l_sample": gen_cfg.l_sample,
            "l_prefix": gen_cfg.l_prefix,
            "split": gen_cfg.split,
            "temperature": gen_cfg.temperature,
            "top_p": gen_cfg.top_p,
            "n_batch": gen_cfg.n_batch,
            "sample_rate": sample_rate,
            "engine": engine,
            "device": str(device),
            "seconds": elapsed,
            "samples_per_s": total * gen_cfg.l_sample / max(elapsed, 1e-9),
        }
        torch.save(samples[order].to(torch.int32), tmp / "codes.pt")  # exact classes, ranked
        (tmp / "manifest.json").write_text(
            json.dumps({"settings": settings, "clips": rows}, indent=2)
        )
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
        (tmp / "manifest.csv").write_text(buffer.getvalue())
        if output.exists():
            old = output.parent / f".{output.name}.old-{os.getpid()}"
            os.replace(output, old)
            shutil.rmtree(old)
        os.replace(tmp, output)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    print(
        f"wrote {total} clips to {output} ({settings['samples_per_s']:,.0f} samples/s); "
        f"log-likelihoods in {output / 'manifest.csv'}",
        file=out,
    )
    return output
