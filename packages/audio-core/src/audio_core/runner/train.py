"""``audio-run train``: the training loop, checkpoints, resume and DistributedDataParallel.

A run lives in ``<output.root>/<output.name>/``: ``config.toml`` (the resolved config),
``versions.json``, ``metrics.jsonl`` (one JSON object per line: ``train_bits`` every
``log_every`` steps, ``val_bits`` at each validation), ``loss_curve.svg`` and
``checkpoints/last.pt`` / ``best.pt``. The data order is a function of the seed and the
epoch, and every random state is in the checkpoint, so a resumed run continues bit for bit.
Under ``torchrun`` every process trains on its slice of each global batch; rank 0 alone logs
and writes.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import math
import os
import random
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

import torch
from torch import nn

from audio_core.config import RunConfig
from audio_core.errors import ProblemsError
from audio_core.optim import param_groups
from audio_core.registry import Registry
from audio_core.resolve import to_toml, unstructure

from .checkpoint import (
    load_checkpoint,
    load_model_state,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from .files import MetricsLog, loss_curve_svg, package_versions, write_text
from .schedule import LRSchedule


class TrainingError(ProblemsError):
    """A run that cannot start or continue (bad run folder, diverged loss, empty split)."""


def _one(message: str) -> TrainingError:
    return TrainingError([message])


class _Stop:
    """Turns SIGINT / SIGTERM into a flag the loop checks after each step."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self._old: dict[int, Any] = {}

    def __enter__(self) -> _Stop:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.signal = signum

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


def build_components(config: RunConfig, registry: Registry) -> tuple[nn.Module, Any]:
    """The model and the dataset the config names, built by their plugins."""
    data = registry.get("datasets", config.dataset.name).load_target()(config.dataset.config)
    model = registry.get("models", config.model.name).load_target()(config.model.config)
    if not isinstance(model, nn.Module) or not hasattr(model, "loss"):
        raise _one(
            f"model {config.model.name!r} built a {type(model).__name__}, not a torch module "
            "with loss(x); its plugin's target must return one"
        )
    return model, data


def decode_table(data: Any) -> torch.Tensor:
    """Waveform value of every class (kept in checkpoints so generation needs no dataset)."""
    n = 2 ** int(data.encoding.bits)
    table: torch.Tensor = data.encoding.decode(torch.arange(n)).float()
    return table


def _collate(batch: list[tuple[torch.Tensor, int]]) -> torch.Tensor:
    return torch.stack([codes for codes, _ in batch])


class Trainer:
    """One training run (see the module notes). ``run()`` returns the exit status."""

    def __init__(
        self,
        config: RunConfig,
        registry: Registry,
        *,
        run_dir: Path,
        resume: bool = False,
        progress: bool = True,
        out: TextIO | None = None,
    ) -> None:
        self.config, self.registry, self.run_dir = config, registry, run_dir
        self.resume, self.progress = resume, progress
        self.out = out if out is not None else sys.stdout
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.main = self.rank == 0

    # -- setup -------------------------------------------------------------------------------
    def _seed(self) -> None:
        seed = self.config.train.seed
        torch.manual_seed(seed)
        random.seed(seed)
        try:
            import numpy as np

            np.random.seed(seed)
        except ImportError:  # pragma: no cover
            pass

    def _check_dir(self) -> None:
        """Refuse a run folder that cannot be used, before anything is built or written."""
        ckpt = self.run_dir / "checkpoints" / "last.pt"
        if self.resume and not ckpt.is_file():
            raise _one(f"{self.run_dir}: no checkpoints/last.pt to resume from")
        if not self.resume and self.main and self.run_dir.exists() and any(self.run_dir.iterdir()):
            raise _one(
                f"{self.run_dir}: the run folder exists; resume it with "
                f"`audio-run train --resume {self.run_dir}` or choose another output.name"
            )

    def _create_dir(self) -> None:
        """Write config and versions once setup has succeeded: a run that cannot start
        leaves no folder behind (which would block a retry with the same name)."""
        if self.main and not self.resume:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            write_text(self.run_dir / "config.toml", to_toml(self.config))
            write_text(self.run_dir / "versions.json", json.dumps(package_versions(), indent=2))
        if self.world > 1:
            torch.distributed.barrier()

    def _optimizer(self, model: nn.Module) -> torch.optim.Optimizer:
        opt = self.config.train.optimizer
        groups = param_groups(model, lr=opt.lr, weight_decay=opt.weight_decay)
        if opt.name == "adamw":
            return torch.optim.AdamW(groups, lr=opt.lr, betas=opt.betas)
        if opt.name == "adam":
            return torch.optim.Adam(groups, lr=opt.lr, betas=opt.betas)
        return torch.optim.SGD(groups, lr=opt.lr, momentum=opt.betas[0])

    def _batches(self, n: int, epoch: int) -> list[list[int]]:
        """This process's index lists for ``epoch``: a seeded permutation cut into global
        batches (the last partial one dropped), each sliced for this rank."""
        bs = self.config.train.batch_size
        gen = torch.Generator().manual_seed(self.config.train.seed * 1_000_003 + epoch)
        order = torch.randperm(n, generator=gen)
        per_rank = bs // self.world
        return [
            order[b * bs + self.rank * per_rank : b * bs + (self.rank + 1) * per_rank].tolist()
            for b in range(n // bs)
        ]

    # -- the loop ----------------------------------------------------------------------------
    def run(self) -> int:
        cfg = self.config.train
        if cfg.batch_size % self.world:
            raise _one(
                f"train.batch_size={cfg.batch_size} must be a multiple of the {self.world} "
                "processes (it is the global batch)"
            )
        self._check_dir()
        self._seed()
        model, data = build_components(self.config, self.registry)
        device = torch.device(
            f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}" if torch.cuda.is_available() else "cpu"
        )
        model.to(device)
        optimizer = self._optimizer(model)
        schedule = LRSchedule(
            optimizer,
            name=cfg.scheduler.name,
            warmup_steps=cfg.scheduler.warmup_steps,
            max_steps=cfg.max_steps,
            patience=cfg.scheduler.patience,
            factor=cfg.scheduler.factor,
            min_lr=cfg.scheduler.min_lr,
        )
        train_set, val_set = data.split("train"), data.split("val")
        n_batches = len(train_set) // cfg.batch_size
        if n_batches == 0:
            raise _one(
                f"dataset {self.config.dataset.name!r}: the train split has {len(train_set)} "
                f"examples, fewer than train.batch_size={cfg.batch_size}; lower the batch size"
            )
        state: dict[str, Any] = {"step": 0, "epoch": 0, "batch": 0, "best_val": math.inf}
        board = self._tensorboard()
        self._create_dir()
        log = MetricsLog(self.run_dir / "metrics.jsonl", tensorboard=board)
        last = self.run_dir / "checkpoints" / "last.pt"
        table = decode_table(data)
        if self.resume:
            ckpt = load_checkpoint(last)
            load_model_state(model, ckpt["model"], last)
            optimizer.load_state_dict(ckpt["optimizer"])
            schedule.load_state_dict(ckpt["schedule"])
            state = {k: ckpt[k] for k in state}
            set_rng_state(ckpt["rng"])
            schedule.apply(state["step"])
            if self.main:
                log.truncate_after(state["step"])
                print(f"resuming {self.run_dir} at step {state['step']}", file=sys.stderr)
        train_model: nn.Module = model
        if self.world > 1:
            from torch.nn.parallel import DistributedDataParallel

            train_model = DistributedDataParallel(
                model, device_ids=[device.index] if device.type == "cuda" else None
            )

        def payload() -> dict[str, Any]:
            return {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "schedule": schedule.state_dict(),
                **state,
                "rng": rng_state(),
                "config": unstructure(self.config),
                "versions": package_versions(),
                "decode_table": table,
                "sample_rate": int(data.sample_rate),
                "model_name": self.config.model.name,
                "dataset_name": self.config.dataset.name,
            }

        def checkpoint(name: str) -> None:
            if self.main:
                save_checkpoint(self.run_dir / "checkpoints" / f"{name}.pt", payload())
            if self.world > 1:
                torch.distributed.barrier()

        def validate() -> float:
            model.eval()
            total, count = 0.0, 0
            loader = torch.utils.data.DataLoader(
                val_set,
                batch_size=cfg.batch_size,
                shuffle=False,
                collate_fn=_collate,
                num_workers=cfg.num_workers,
            )
            with torch.no_grad(), self._autocast(device):
                for i, x in enumerate(loader):
                    if cfg.val_batches and i >= cfg.val_batches:
                        break
                    total += float(model.loss(x.to(device)).bits) * x.shape[0]  # type: ignore[operator]
                    count += x.shape[0]
            model.train()
            return total / max(1, count)

        total_steps = cfg.max_steps or n_batches * cfg.max_epochs
        bar = self._bar(total_steps, state["step"])
        window: list[float] = []
        window_start = time.perf_counter()
        samples_per_step = cfg.batch_size * int(data.sample_len)
        status = 0
        model.train()
        with _Stop() as stop:
            while not self._done(state, n_batches):
                epoch = state["epoch"]
                batches = self._batches(len(train_set), epoch)[state["batch"] :]
                loader = torch.utils.data.DataLoader(
                    train_set,
                    batch_sampler=batches,
                    collate_fn=_collate,
                    num_workers=cfg.num_workers,
                    generator=torch.Generator().manual_seed(cfg.seed + epoch),
                )
                for x in loader:
                    loss = self._step(train_model, optimizer, x.to(device), device)
                    if not math.isfinite(loss):
                        good = (
                            f"the last good checkpoint is {last}"
                            if last.exists()
                            else "no checkpoint was written yet"
                        )
                        raise _one(
                            f"the training loss is {loss} at step {state['step'] + 1}; stopping "
                            f"({good}; try a lower train.optimizer.lr or train.grad_clip)"
                        )
                    state["step"] += 1
                    state["batch"] += 1
                    schedule.apply(state["step"])
                    window.append(loss)
                    step = state["step"]
                    if step % cfg.log_every == 0 or step == total_steps:
                        elapsed = time.perf_counter() - window_start
                        rate = len(window) * samples_per_step / max(elapsed, 1e-9)
                        record = {
                            "step": step,
                            "epoch": epoch,
                            "train_bits": sum(window) / len(window),
                            "lr": optimizer.param_groups[0]["lr"],
                            "samples_per_s": rate,
                            "time": datetime.datetime.now().isoformat(timespec="seconds"),
                        }
                        if self.main:
                            log.write(record)
                        bar.set_postfix(
                            bits=f"{record['train_bits']:.3f}", samples_s=f"{rate:,.0f}"
                        )
                        window, window_start = [], time.perf_counter()
                    bar.update(1)
                    end_of_epoch = state["batch"] == n_batches
                    if end_of_epoch:
                        state["epoch"] += 1
                        state["batch"] = 0
                    if (cfg.val_every and step % cfg.val_every == 0) or (
                        not cfg.val_every and end_of_epoch
                    ):
                        val = validate()
                        schedule.validated(val)
                        if self.main:
                            log.write({"step": step, "epoch": epoch, "val_bits": val})
                            write_text(self.run_dir / "loss_curve.svg", loss_curve_svg(log.read()))
                        if val < state["best_val"]:
                            state["best_val"] = val
                            checkpoint("best")
                        checkpoint("last")
                    elif cfg.checkpoint_every and step % cfg.checkpoint_every == 0:
                        checkpoint("last")
                    if stop.signal is not None:
                        checkpoint("last")
                        name = signal.Signals(stop.signal).name
                        print(
                            f"{name}: wrote {last} at step {step}; resume with "
                            f"`audio-run train --resume {self.run_dir}`",
                            file=sys.stderr,
                        )
                        status = 128 + stop.signal
                        break
                    if self._done(state, n_batches):
                        break
                if status:
                    break
        bar.close()
        if status:
            return status
        checkpoint("last")
        if self.world > 1:
            self._check_ranks_agree(model, log)
        if self.main:
            write_text(self.run_dir / "loss_curve.svg", loss_curve_svg(log.read()))
            if cfg.sample_at_end:
                self._sample_at_end()
            best = state["best_val"]
            print(
                f"trained {state['step']} steps; best validation NLL "
                f"{best:.4f} bits per sample; run folder {self.run_dir}",
                file=self.out,
            )
        return 0

    def _check_ranks_agree(self, model: nn.Module, log: MetricsLog) -> None:
        """All-gather a fingerprint of the parameters: DDP must have kept every rank equal."""
        with torch.no_grad():
            mine = torch.stack([p.double().sum() for p in model.parameters()]).sum()
        prints = [torch.zeros_like(mine) for _ in range(self.world)]
        torch.distributed.all_gather(prints, mine)
        values = [float(p) for p in prints]
        if self.main:
            log.write({"ddp_param_fingerprints": values})
        if len(set(values)) != 1:
            raise _one(f"DistributedDataParallel ranks diverged: parameter sums {values}")

    def _sample_at_end(self) -> None:
        import attrs

        from audio_core.runner.generate import generate

        ckpt_dir = self.run_dir / "checkpoints"
        source = ckpt_dir / "best.pt" if (ckpt_dir / "best.pt").exists() else ckpt_dir / "last.pt"
        gen = attrs.evolve(self.config.generate, n_samples=self.config.train.sample_at_end)
        generate(
            source,
            attrs.evolve(self.config, generate=gen),
            self.registry,
            output=self.run_dir / "samples" / "final",
            force=True,
            progress=self.progress,
            out=self.out,
        )

    def _tensorboard(self) -> Any:
        """A TensorBoard ``SummaryWriter`` under ``RUN_DIR/tensorboard`` when asked for."""
        if not (self.config.output.tensorboard and self.main):
            return None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise _one(
                "output.tensorboard=true needs the tensorboard package: pip install tensorboard "
                "(or set output.tensorboard=false)"
            ) from None
        return SummaryWriter(str(self.run_dir / "tensorboard"))

    def _done(self, state: dict[str, Any], n_batches: int) -> bool:
        cfg = self.config.train
        if cfg.max_steps and state["step"] >= cfg.max_steps:
            return True
        return bool(cfg.max_epochs and state["epoch"] >= cfg.max_epochs)

    def _autocast(self, device: torch.device) -> contextlib.AbstractContextManager[Any]:
        if self.config.train.precision == "bf16":
            return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _step(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        x: torch.Tensor,
        device: torch.device,
    ) -> float:
        optimizer.zero_grad(set_to_none=True)
        with self._autocast(device):
            nats = model(x)
        loss = nats.float() / math.log(2)
        if not torch.isfinite(loss):
            return float(loss.detach())
        loss.backward()
        if self.config.train.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), self.config.train.grad_clip)
        optimizer.step()
        if self.world > 1:  # report the global mean loss on every rank
            reduced = loss.detach().clone()
            torch.distributed.all_reduce(reduced)
            return float(reduced) / self.world
        return float(loss.detach())

    def _bar(self, total: int, initial: int) -> Any:
        from tqdm import tqdm

        return tqdm(
            total=total,
            initial=initial,
            unit="step",
            desc="train",
            disable=not (self.progress and self.main),
            dynamic_ncols=True,
        )


@contextlib.contextmanager
def distributed() -> Iterator[None]:
    """Initialise ``torch.distributed`` when launched by ``torchrun`` (``WORLD_SIZE > 1``)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        yield
        return
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    torch.distributed.init_process_group(backend=backend)
    try:
        yield
    finally:
        torch.distributed.destroy_process_group()


def default_run_dir(config: RunConfig) -> Path:
    name = config.output.name or (
        f"{config.model.name}-{config.dataset.name}-"
        f"{datetime.datetime.now().strftime('%Y%m%d-%H%M%S')}"
    )
    return Path(config.output.root) / name
