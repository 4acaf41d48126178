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
from attrs import asdict, define
from torch import nn

from audio_core.config import RunConfig
from audio_core.errors import TrainingError
from audio_core.io import write_text
from audio_core.optim import param_groups
from audio_core.protocols import DATASET_MEMBERS, IGNORE_INDEX, MODEL_MEMBERS, missing_members
from audio_core.registry import Registry
from audio_core.resolve import to_toml, unstructure
from audio_core.threads import ThreadChoice, announce
from audio_core.versions import package_versions

from .checkpoint import (
    RESUME_KEYS,
    load_checkpoint,
    load_model_state,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from .lock import RunLock, contents
from .logs import MetricsLog, loss_curve_svg
from .schedule import LRSchedule

__all__ = ["Trainer", "TrainingError", "build_components", "default_run_dir", "distributed"]


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
    """The model and the dataset the config names, built by their plugins.

    Raises:
        TrainingError: a part lacks what the runner needs (named, with the missing members).
    """
    del registry  # the choices carry their records
    data = config.dataset.build()
    lacking = missing_members(data, DATASET_MEMBERS)
    if lacking:
        raise _one(
            f"dataset {config.dataset.name!r} built a {type(data).__name__}, which lacks "
            f"{', '.join(lacking)}; a dataset target must return an object with "
            f"{', '.join(DATASET_MEMBERS)} (see audio_core.protocols.AudioDataset)"
        )
    model = config.model.build()
    lacking = missing_members(model, MODEL_MEMBERS)
    if not isinstance(model, nn.Module) or lacking:
        raise _one(
            f"model {config.model.name!r} built a {type(model).__name__}, not a torch module "
            f"with {', '.join(MODEL_MEMBERS)}; its plugin's target must return one"
        )
    return model, data


def decode_table(data: Any) -> torch.Tensor:
    """Waveform value of every class (kept in checkpoints so generation needs no dataset)."""
    n = 2 ** int(data.encoding.bits)
    table: torch.Tensor = torch.as_tensor(data.encoding.decode(torch.arange(n))).float()
    return table


def _collate(batch: list[tuple[torch.Tensor, int]]) -> torch.Tensor:
    return torch.stack([codes for codes, _ in batch])


class Waveforms(torch.utils.data.Dataset[tuple[torch.Tensor, int]]):
    """A split's waveforms (``split.audio(i)``, in ``[-1, 1]``) instead of its codes, for
    models that declare ``input_kind = "waveform"`` (diffusion models)."""

    def __init__(self, split: Any) -> None:
        self.split = split

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return torch.as_tensor(self.split.audio(index)).float(), int(self.split[index][1])


def loss_unit(model: Any) -> str:
    """``"nats"`` (an NLL, logged as bits per sample) or the model's own unit (``"mse"``)."""
    return str(getattr(model, "loss_unit", "nats"))


@define
class TrainState:
    """Where a run is: what a checkpoint records besides the weights and RNG states."""

    step: int = 0
    epoch: int = 0
    batch: int = 0  # position inside the epoch
    best_val: float = math.inf


class Trainer:
    """One training run (see the module notes). ``run()`` returns the exit status.

    The steps, in order: :meth:`_check_dir`, :meth:`_build`, :meth:`_create_dir`,
    :meth:`_restore` (``--resume``), :meth:`_train` (the loop: :meth:`_step`,
    :meth:`_log_window`, :meth:`_validate`, :meth:`_checkpoint`) and :meth:`_finish`.
    """

    def __init__(
        self,
        config: RunConfig,
        registry: Registry,
        *,
        run_dir: Path,
        resume: bool = False,
        reset_optimizer: bool = False,
        progress: bool = True,
        out: TextIO | None = None,
        threads: ThreadChoice | None = None,
    ) -> None:
        self.config, self.registry, self.run_dir = config, registry, run_dir
        self.threads = threads
        self.resume, self.progress = resume, progress
        self.reset_optimizer = reset_optimizer
        self.restart = False  # --resume of a run that stopped before its first checkpoint
        self.good: tuple[Path, int] | None = None  # the last checkpoint known to be finite
        self.out = out if out is not None else sys.stdout
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.main = self.rank == 0
        self.state = TrainState()
        self.last = run_dir / "checkpoints" / "last.pt"

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
        """Refuse a run folder that cannot be used, before anything is built or written.

        A folder whose run stopped before its first checkpoint (a ``config.toml`` and no
        ``checkpoints/last.pt``) is restarted from step 0 by ``--resume``.
        """
        batch = self.config.train.batch_size
        if batch % self.world:
            raise _one(
                f"train.batch_size={batch} must be a multiple of the {self.world} processes "
                "(it is the global batch)"
            )
        unfinished = (self.run_dir / "config.toml").is_file() and not self.last.is_file()
        if self.resume and unfinished:
            self.resume, self.restart = False, True
            if self.main:
                print(
                    f"note: {self.run_dir} stopped before its first checkpoint: restarting it "
                    "from step 0 with its config.toml",
                    file=sys.stderr,
                )
            return
        if self.resume and not self.last.is_file():
            raise _one(f"{self.run_dir}: no checkpoints/last.pt to resume from")
        if not self.resume and self.main and contents(self.run_dir):
            if unfinished:
                raise _one(
                    f"{self.run_dir}: the run folder exists but holds no checkpoint (its run "
                    f"stopped before the first); restart it from step 0 with `audio-run train "
                    f"--resume {self.run_dir}` or choose another output.name"
                )
            raise _one(
                f"{self.run_dir}: the run folder exists; resume it with "
                f"`audio-run train --resume {self.run_dir}` or choose another output.name"
            )

    def _build(self) -> None:
        """The model, data, optimizer and schedule, on this process's device."""
        cfg = self.config.train
        self.model, self.data = build_components(self.config, self.registry)
        local = int(os.environ.get("LOCAL_RANK", "0"))
        self.device = torch.device(f"cuda:{local}" if torch.cuda.is_available() else "cpu")
        self.model.to(self.device)
        self.optimizer = self._optimizer(self.model)
        self.schedule = LRSchedule(
            self.optimizer,
            name=cfg.scheduler.name,
            warmup_steps=cfg.scheduler.warmup_steps,
            max_steps=cfg.max_steps,
            patience=cfg.scheduler.patience,
            factor=cfg.scheduler.factor,
            min_lr=cfg.scheduler.min_lr,
        )
        self.train_set, self.val_set = self.data.split("train"), self.data.split("val")
        if getattr(self.model, "input_kind", "codes") == "waveform":
            if not hasattr(self.train_set, "audio"):
                raise _one(
                    f"model {self.config.model.name!r} trains on waveforms, but dataset "
                    f"{self.config.dataset.name!r}'s splits have no audio(i)"
                )
            self.train_set, self.val_set = Waveforms(self.train_set), Waveforms(self.val_set)
        self.unit = loss_unit(self.model)
        self.n_batches = len(self.train_set) // cfg.batch_size
        if self.n_batches == 0:
            raise _one(
                f"dataset {self.config.dataset.name!r}: the train split has "
                f"{len(self.train_set)} examples, fewer than train.batch_size={cfg.batch_size}; "
                "lower the batch size"
            )
        self.table = decode_table(self.data)
        classes = getattr(self.model, "n_classes", None)
        bits = int(self.data.encoding.bits)
        if isinstance(classes, int) and classes != 2**bits:
            raise _one(
                f"model {self.config.model.name!r} predicts {classes} classes but dataset "
                f"{self.config.dataset.name!r} yields {bits}-bit codes ({2**bits} classes); "
                f"make model.bits and dataset.bits agree"
            )
        self.total_steps = cfg.max_steps or self.n_batches * cfg.max_epochs

    def _optimizer(self, model: nn.Module) -> torch.optim.Optimizer:
        opt = self.config.train.optimizer
        groups = param_groups(model, lr=opt.lr, weight_decay=opt.weight_decay)
        if opt.name == "adamw":
            return torch.optim.AdamW(groups, lr=opt.lr, betas=opt.betas)
        if opt.name == "adam":
            return torch.optim.Adam(groups, lr=opt.lr, betas=opt.betas)
        return torch.optim.SGD(groups, lr=opt.lr, momentum=opt.betas[0])

    def _create_dir(self) -> None:
        """Write config and versions once setup has succeeded: a run that cannot start
        leaves no folder behind (which would block a retry with the same name)."""
        board = self._tensorboard()  # may refuse (no tensorboard): before anything is written
        if self.main and not self.resume:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            if self.restart:  # what the stopped run logged is not part of this one
                for stale in ("metrics.jsonl", "loss_curve.svg"):
                    (self.run_dir / stale).unlink(missing_ok=True)
            write_text(self.run_dir / "config.toml", to_toml(self.config))
            write_text(self.run_dir / "versions.json", json.dumps(package_versions(), indent=2))
        if self.world > 1:
            torch.distributed.barrier()
        self.log = MetricsLog(self.run_dir / "metrics.jsonl", tensorboard=board)

    def _restore(self) -> None:
        """Load ``last.pt``: weights, optimizer, schedule, position and every RNG state."""
        ckpt = load_checkpoint(self.last, need=RESUME_KEYS)
        load_model_state(self.model, ckpt["model"], self.last)
        if not self.reset_optimizer:
            self._restore_optimizer(ckpt)
        elif self.main:
            print(
                "note: --reset-optimizer: a fresh optimizer from the checkpoint's weights",
                file=sys.stderr,
            )
        self.schedule.load_state_dict(ckpt["schedule"])
        self.state = TrainState(**{k: ckpt[k] for k in asdict(TrainState())})
        self.good = (self.last, self.state.step)
        set_rng_state(ckpt["rng"])
        self._same_threads(ckpt.get("threads"))
        self.schedule.apply(self.state.step)
        if self.main:
            self.log.truncate_after(self.state.step)
            print(f"resuming {self.run_dir} at step {self.state.step}", file=sys.stderr)

    def _same_threads(self, saved: object) -> None:
        """Take the thread count the run was trained with when ``--threads`` chose one itself:
        sums over threads round differently, and a resume must continue bit for bit."""
        if self.threads is None or not self.threads.auto or not isinstance(saved, int):
            return
        if saved != self.threads.threads:
            torch.set_num_threads(saved)
            self.threads = ThreadChoice(
                saved,
                f"as the run was trained so far, so that it resumes bit for bit; "
                f"--threads N to change (now would be {self.threads.threads})",
                auto=False,
            )

    def _restore_optimizer(self, ckpt: dict[str, Any]) -> None:
        """The saved optimizer state (moments, step counts) under this run's settings: a
        resume with another ``lr``, ``weight_decay`` or ``betas`` uses the new ones."""
        name = self.config.train.optimizer.name
        saved = ckpt["config"].get("train", {}).get("optimizer", {}).get("name", name)
        if saved != name:
            raise _one(
                f"{self.last}: its optimizer state is {saved}'s and this run uses {name} "
                f"(train.optimizer.name); resume with --reset-optimizer to start a fresh {name} "
                "optimizer from these weights"
            )
        settings = [
            {k: v for k, v in group.items() if k != "params"}
            for group in self.optimizer.param_groups
        ]
        try:
            self.optimizer.load_state_dict(ckpt["optimizer"])
        except (ValueError, KeyError, RuntimeError) as exc:
            raise _one(
                f"{self.last}: its optimizer state does not fit this run's optimizer ({exc}); "
                f"resume with --reset-optimizer to start a fresh {name} optimizer from these "
                "weights"
            ) from None
        for group, own in zip(self.optimizer.param_groups, settings, strict=True):
            group.update(own)

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

    # -- the run -----------------------------------------------------------------------------
    def run(self) -> int:
        lock = RunLock(self.run_dir) if self.main else None
        try:
            if lock is not None:
                lock.acquire()
            try:
                self._check_dir()
                self._seed()
                self._build()
                self._create_dir()
            except BaseException:
                if lock is not None:  # a run that cannot start leaves no folder behind
                    lock.discard()
                raise
            return self._run()
        finally:
            if lock is not None:
                lock.release()

    def _run(self) -> int:
        if self.resume:
            self._restore()
        self.train_model: nn.Module = self.model
        if self.world > 1:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.train_model = DistributedDataParallel(self.model, device_ids=ids)
        mode = self.config.train.compile
        if mode != "none":
            # One graph or an error (no silent fallback to eager pieces); the weights stay the
            # module's, so checkpoints and resumes are unchanged.
            compiled: Any = torch.compile(self.train_model, fullgraph=True, backend=mode)
            self.train_model = compiled  # an OptimizedModule, a Module
        status = self._train()
        if status:
            return status
        return self._finish()

    def _train(self) -> int:
        """The loop over epochs and batches; returns 0, or ``128 + signal`` when stopped."""
        cfg = self.config.train
        if self.threads is not None and self.main:
            announce(self.threads, quiet=not self.progress)
        self.bar = self._bar(self.total_steps, self.state.step)
        self.window: list[float] = []
        self.window_start = time.perf_counter()
        self.model.train()
        try:
            with _Stop() as stop:
                while not self._done():
                    epoch = self.state.epoch
                    batches = self._batches(len(self.train_set), epoch)[self.state.batch :]
                    loader = torch.utils.data.DataLoader(
                        self.train_set,
                        batch_sampler=batches,
                        collate_fn=_collate,
                        num_workers=cfg.num_workers,
                        generator=torch.Generator().manual_seed(cfg.seed + epoch),
                    )
                    for x in loader:
                        self._advance(self._step(x.to(self.device)), epoch)
                        if stop.signal is not None:
                            return self._stopped(stop.signal)
                        if self._done():
                            break
        finally:
            self.bar.close()
        return 0

    def _step(self, x: torch.Tensor) -> float:
        """One training step on batch ``x``; returns the loss in bits per sample.

        A model with a positive ``tbptt`` attribute (SampleRNN) is trained with truncated
        backpropagation through time: the optimizer steps once per ``tbptt``-sample chunk of
        the batch, the model's state carried (detached) from chunk to chunk; the step counts
        once, so checkpoints still fall between batches and resume exactly.

        Raises:
            TrainingError: the loss is not finite (no update is made from it).
        """
        tbptt = int(getattr(self.model, "tbptt", 0) or 0)
        if tbptt > 0:
            return self._step_tbptt(x, tbptt)
        # a model that draws noise (diffusion) draws it for the whole global batch and keeps
        # this rank's rows: the same numbers as one process on that batch
        shard = (
            {"shard": (self.rank, self.world)} if getattr(self.model, "shards_noise", False) else {}
        )
        with self._autocast(), self._compile_errors():
            loss = self.train_model(x, **shard)
        return self._update(loss.float() / math.log(2) if self.unit == "nats" else loss.float())

    def _step_tbptt(self, x: torch.Tensor, chunk: int) -> float:
        state: Any = None
        total, count = 0.0, 0
        length = x.shape[1]
        for start in range(0, length, chunk):
            valid = int((x[:, start:] != IGNORE_INDEX).sum())
            if valid == 0:  # the rest is padding
                break
            end = min(length, start + chunk)
            with self._autocast(), self._compile_errors():
                nats, state = self.train_model(x, chunk=(start, end), state=state)
            n = int((x[:, start:end] != IGNORE_INDEX).sum())
            state = [h.detach() for h in state]
            if n == 0:
                continue
            total += self._update(nats.float() / math.log(2)) * n
            count += n
        return total / max(1, count)

    def _update(self, loss: torch.Tensor) -> float:
        """Backward, clip and step on ``loss`` (bits, or the model's unit); its value,
        averaged over ranks."""
        if not torch.isfinite(loss):
            raise _one(
                f"the training loss is {float(loss)} at step {self.state.step + 1}; stopping "
                f"({self._last_good()}; try a lower train.optimizer.lr or train.grad_clip)"
            )
        optimizer = self.optimizer
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        cfg = self.config.train
        if cfg.grad_clip and cfg.grad_clip_algorithm == "norm":
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        elif cfg.grad_clip:
            torch.nn.utils.clip_grad_value_(self.model.parameters(), cfg.grad_clip)
        optimizer.step()
        if self.world > 1:  # report the global mean loss on every rank
            reduced = loss.detach().clone()
            torch.distributed.all_reduce(reduced)
            return float(reduced) / self.world
        return float(loss.detach())

    def _advance(self, loss: float, epoch: int) -> None:
        """Count the step, log, and validate / checkpoint when due."""
        cfg, state = self.config.train, self.state
        state.step += 1
        state.batch += 1
        self.schedule.apply(state.step)
        self.window.append(loss)
        if state.step % cfg.log_every == 0 or state.step == self.total_steps:
            self._log_window(epoch)
        self.bar.update(1)
        end_of_epoch = state.batch == self.n_batches
        if end_of_epoch:
            state.epoch += 1
            state.batch = 0
        if (cfg.val_every and state.step % cfg.val_every == 0) or (
            not cfg.val_every and end_of_epoch
        ):
            self._validate_and_checkpoint(epoch)
        elif cfg.checkpoint_every and state.step % cfg.checkpoint_every == 0:
            self._checkpoint("last")

    def _log_window(self, epoch: int) -> None:
        elapsed = time.perf_counter() - self.window_start
        samples = len(self.window) * self.config.train.batch_size * int(self.data.sample_len)
        rate = samples / max(elapsed, 1e-9)
        key = "train_bits" if self.unit == "nats" else "train_loss"
        record = {
            "step": self.state.step,
            "epoch": epoch,
            key: sum(self.window) / len(self.window),
            "lr": self.optimizer.param_groups[0]["lr"],
            "samples_per_s": rate,
            "time": datetime.datetime.now().isoformat(timespec="seconds"),
        }
        if self.main:
            self.log.write(record)
        shown = {"bits" if self.unit == "nats" else self.unit: f"{record[key]:.4g}"}
        self.bar.set_postfix(**shown, samples_s=f"{rate:,.0f}")
        self.window, self.window_start = [], time.perf_counter()

    def _validate_and_checkpoint(self, epoch: int) -> None:
        val, accuracy = self._validate()
        self.schedule.validated(val)
        if self.main:
            key = "val_bits" if self.unit == "nats" else "val_loss"
            record: dict[str, Any] = {"step": self.state.step, "epoch": epoch, key: val}
            if accuracy is not None:
                record["val_accuracy"] = accuracy
            self.log.write(record)
            write_text(
                self.run_dir / "loss_curve.svg", loss_curve_svg(self.log.read(), unit=self.unit)
            )
        if val < self.state.best_val:
            self.state.best_val = val
            self._checkpoint("best")
        self._checkpoint("last")

    def _validate(self) -> tuple[float, float | None]:
        """Validation NLL in bits per sample and next-sample accuracy (``None`` for a model
        without ``score_tokens``) over ``train.val_batches`` batches, or all; padding is left
        out of both."""
        cfg = self.config.train
        self.model.eval()
        loader = torch.utils.data.DataLoader(
            self.val_set,
            batch_size=cfg.batch_size,
            shuffle=False,
            collate_fn=_collate,
            num_workers=cfg.num_workers,
        )
        scorer = getattr(self.model, "score_tokens", None)
        nats, count, correct = 0.0, 0, 0
        total, items = 0.0, 0
        with torch.no_grad(), self._autocast():
            for i, x in enumerate(loader):
                if cfg.val_batches and i >= cfg.val_batches:
                    break
                x = x.to(self.device)
                if scorer is not None:
                    scores = scorer(x, (1,))
                    nats, count = nats + scores.nats, count + scores.positions
                    correct += scores.correct[1]
                else:
                    loss: Any = self._val_loss(x, i)
                    total += float(loss) * x.shape[0]
                    items += x.shape[0]
        self.model.train()
        if scorer is not None:
            return nats / max(1, count) / math.log(2), correct / max(1, count)
        return total / max(1, items), None

    def _val_loss(self, x: torch.Tensor, index: int) -> float:
        """One validation batch's loss: bits per sample, or (a model with its own unit) the
        objective with the batch's own seeded noise, so every validation draws the same."""
        if self.unit == "nats":
            return float(self.model.loss(x).bits)  # type: ignore[operator]
        generator = torch.Generator(device=x.device).manual_seed(1_000_003 + index)
        return float(self.model.loss(x, generator=generator).value)  # type: ignore[operator]

    def _payload(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            **asdict(self.state),
            "rng": rng_state(),
            "threads": torch.get_num_threads(),  # reductions depend on it: resumes reuse it
            "config": unstructure(self.config),
            "versions": package_versions(),
            "decode_table": self.table,
            "sample_rate": int(self.data.sample_rate),
            "model_name": self.config.model.name,
            "dataset_name": self.config.dataset.name,
        }

    def _last_good(self) -> str:
        if self.good is None:
            return "no checkpoint was written yet"
        path, step = self.good
        return f"the last good checkpoint is {path} (step {step})"

    def _finite(self) -> bool:
        """Whether every parameter and every optimizer state tensor is finite (a diverged
        run's weights are never checkpointed)."""
        with torch.no_grad():
            tensors: list[torch.Tensor] = [*self.model.parameters()]
            for slot in self.optimizer.state.values():
                tensors.extend(v for v in slot.values() if isinstance(v, torch.Tensor))
            return all(bool(torch.isfinite(t).all()) for t in tensors if t.is_floating_point())

    def _checkpoint(self, name: str) -> None:
        """Write ``checkpoints/<name>.pt``, unless the weights diverged (then stop).

        Raises:
            TrainingError: a parameter or optimizer state is not finite.
        """
        if not self._finite():  # every rank holds the same weights: all of them stop
            raise _one(
                f"the weights are not finite at step {self.state.step}; stopping without "
                f"writing {name}.pt ({self._last_good()}; try a lower train.optimizer.lr or "
                "train.grad_clip)"
            )
        path = self.run_dir / "checkpoints" / f"{name}.pt"
        if self.main:
            save_checkpoint(path, self._payload())
        if name == "last":
            self.good = (path, self.state.step)
        if self.world > 1:
            torch.distributed.barrier()

    def _stopped(self, signum: int) -> int:
        """SIGINT / SIGTERM: write ``last.pt`` and say how to resume."""
        self._checkpoint("last")
        name = signal.Signals(signum).name
        print(
            f"{name}: wrote {self.last} at step {self.state.step}; resume with "
            f"`audio-run train --resume {self.run_dir}`",
            file=sys.stderr,
        )
        return 128 + signum

    def _finish(self) -> int:
        self._checkpoint("last")
        if self.world > 1:
            self._check_ranks_agree()
        if self.main:
            write_text(
                self.run_dir / "loss_curve.svg", loss_curve_svg(self.log.read(), unit=self.unit)
            )
            if self.config.train.sample_at_end:
                self._sample_at_end()
            if not math.isfinite(self.state.best_val):
                best = "no validation ran (train.val_every sets how often)"
            elif self.unit == "nats":
                best = f"best validation NLL {self.state.best_val:.4f} bits per sample"
            else:
                best = f"best validation loss {self.state.best_val:.5g} ({self.unit})"
            print(
                f"trained {self.state.step} steps; {best}; run folder {self.run_dir}", file=self.out
            )
        return 0

    def _check_ranks_agree(self) -> None:
        """All-gather a fingerprint of the parameters: DDP must have kept every rank equal."""
        with torch.no_grad():
            mine = torch.stack([p.double().sum() for p in self.model.parameters()]).sum()
        prints = [torch.zeros_like(mine) for _ in range(self.world)]
        torch.distributed.all_gather(prints, mine)
        values = [float(p) for p in prints]
        if self.main:
            self.log.write({"ddp_param_fingerprints": values})
        if len(set(values)) != 1:
            raise _one(f"DistributedDataParallel ranks diverged: parameter sums {values}")

    def _sample_at_end(self) -> None:
        import attrs

        from audio_core.runner.generate import generate

        ckpt_dir = self.run_dir / "checkpoints"
        source = ckpt_dir / "best.pt" if (ckpt_dir / "best.pt").exists() else ckpt_dir / "last.pt"
        gen = attrs.evolve(self.config.generate, n_samples=self.config.train.sample_at_end)
        generate(
            load_checkpoint(source),
            attrs.evolve(self.config, generate=gen),
            self.registry,
            checkpoint=source,
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

    def _done(self) -> bool:
        cfg = self.config.train
        if cfg.max_steps and self.state.step >= cfg.max_steps:
            return True
        return bool(cfg.max_epochs and self.state.epoch >= cfg.max_epochs)

    @contextlib.contextmanager
    def _compile_errors(self) -> Iterator[None]:
        """A forward that ``train.compile`` cannot trace or compile is one line, naming the
        setting and the first line of the reason."""
        mode = self.config.train.compile
        try:
            yield
        except Exception as exc:
            if mode == "none":
                raise
            from torch._dynamo.exc import TorchDynamoException

            if not isinstance(exc, TorchDynamoException):
                raise
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise _one(
                f"train.compile={mode}: the model's training forward does not compile as one "
                f"graph ({reason}); set train.compile=none"
            ) from None

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.config.train.precision == "bf16":
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

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
