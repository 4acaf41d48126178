"""The reference's experiments as presets: ``audio-run --preset sashimi-sc09``.

Each function returns a run configuration as plain data (the form of a ``--config`` TOML
file): the model exactly as the reference builds it (its parameter count is tested against
the reference's), the dataset, and the optimizer, schedule, batch size and length the
reference's experiment files set. Sources, from state-spaces/s4:

- ``sashimi-sc09``, ``sashimi-sc09-unet``, ``sashimi-youtubemix``, ``sashimi-beethoven``,
  ``wavenet-beethoven``, ``samplernn-beethoven``: ``configs/experiment/audio/<name>.yaml``
  with the defaults they include (AdamW at 0.001 without weight decay unless the file says
  otherwise; the plateau schedule; the dataset configs' sample lengths).
- ``wavenet-sc09``, ``samplernn-sc09``: the models and datasets of the reference's resolved
  configurations (the fixtures in ``../shared/reference``); the training settings of their
  Beethoven counterparts, with SC09's batch of 32 for WaveNet and the TBPTT loader's batch of
  128 for SampleRNN.
- ``wavenet-youtubemix``, ``samplernn-youtubemix``: as the Beethoven ones, on YouTubeMix
  (mu-law).

``audio-run config --preset NAME`` prints one as TOML, to edit and pass back with ``--config``.
"""

from __future__ import annotations

from typing import Any

_PLATEAU = {"name": "plateau", "patience": 20, "factor": 0.2}


def _train(batch: int, *, lr: float = 0.001, patience: int = 20, **more: Any) -> dict[str, Any]:
    return {
        "batch_size": batch,
        "max_epochs": 1000,
        "optimizer": {"name": "adamw", "lr": lr, "weight_decay": 0.0},
        "scheduler": {**_PLATEAU, "patience": patience},
        **more,
    }


def sashimi_sc09() -> dict[str, Any]:
    """SaShiMi on SC09 (the paper's 4.8 M-parameter model, S4 kernels)."""
    return {
        "model": {"name": "sashimi"},
        "dataset": {"name": "sc09", "sample_len": 16000},
        "train": _train(32),
    }


def sashimi_sc09_unet() -> dict[str, Any]:
    """SaShiMi U-Net on SC09 (the reference's Sept. 2022 model, 6.8 M parameters)."""
    return {
        "model": {
            "name": "sashimi",
            "unet": True,
            "kernel": {"name": "s4", "n_ssm": 0, "init": "legs"},
        },
        "dataset": {"name": "sc09", "sample_len": 16000},
        "train": {
            "batch_size": 16,
            "max_epochs": 100,
            "max_steps": 200000,
            "optimizer": {"name": "adamw", "lr": 0.001, "weight_decay": 0.1},
            "scheduler": {"name": "cosine", "warmup_steps": 1000},
        },
    }


def sashimi_youtubemix() -> dict[str, Any]:
    """SaShiMi on YouTubeMix (8.2 s windows at 16 kHz, mu-law)."""
    return {
        "model": {"name": "sashimi", "l_max": 131072},
        "dataset": {"name": "youtubemix", "sample_len": 131072},
        "train": _train(1, lr=0.004),
    }


def sashimi_beethoven() -> dict[str, Any]:
    """SaShiMi on Beethoven (8 s windows at 16 kHz, linear 8-bit)."""
    return {
        "model": {"name": "sashimi", "l_max": 128000},
        "dataset": {"name": "beethoven", "sample_len": 128000},
        "train": _train(1, lr=0.004),
    }


def wavenet_sc09() -> dict[str, Any]:
    """WaveNet on SC09 (4 x 10 layers, receptive field 4093, 4.2 M parameters)."""
    return {
        "model": {"name": "wavenet"},
        "dataset": {"name": "sc09", "sample_len": 16000},
        "train": _train(32, patience=5),
    }


def wavenet_youtubemix() -> dict[str, Any]:
    """WaveNet on YouTubeMix."""
    return {
        "model": {"name": "wavenet"},
        "dataset": {"name": "youtubemix", "sample_len": 131072},
        "train": _train(1, patience=5),
    }


def wavenet_beethoven() -> dict[str, Any]:
    """WaveNet on Beethoven."""
    return {
        "model": {"name": "wavenet"},
        "dataset": {"name": "beethoven", "sample_len": 128000},
        "train": _train(1, patience=5),
    }


def _samplernn(dataset: dict[str, Any], dequantize: str) -> dict[str, Any]:
    return {
        "model": {"name": "samplernn", "dequantize": dequantize, "tbptt": 1024},
        "dataset": dataset,
        "train": _train(128, grad_clip=1.0, grad_clip_algorithm="value"),
    }


def samplernn_sc09() -> dict[str, Any]:
    """SampleRNN on SC09 (frames 8, 2, 2; one 1024-wide GRU per tier; 35.0 M parameters)."""
    return _samplernn({"name": "sc09", "sample_len": 16000}, "mu-law")


def samplernn_youtubemix() -> dict[str, Any]:
    """SampleRNN on YouTubeMix (mu-law)."""
    return _samplernn({"name": "youtubemix", "sample_len": 131072}, "mu-law")


def samplernn_beethoven() -> dict[str, Any]:
    """SampleRNN on Beethoven (linear)."""
    return _samplernn({"name": "beethoven", "sample_len": 128000}, "linear")


#: name -> (function, one-line summary)
# -- DiffWave (albertfgu/diffwave-sashimi, master: configs/model/*.yaml, experiment sc09) ------
_DIFFWAVE_TRAIN = {
    # the reference: Adam at 2e-4, constant, 4 clips per GPU, a checkpoint every 10k of 1M
    # iterations; set train.batch_size to 4 x the GPUs it used for its global batch
    "batch_size": 4,
    "max_epochs": 1_000_000,
    "max_steps": 1_000_000,
    "optimizer": {"name": "adam", "lr": 2e-4, "weight_decay": 0.0},
    "scheduler": {"name": "constant"},
    "checkpoint_every": 10_000,
    "val_every": 10_000,
}
# every SC09 clip, as the reference trains its unconditional models (no split)
_DIFFWAVE_DATA = {"name": "sc09", "sample_len": 16000, "train_on": "all"}
_DIFFWAVE_S4 = {"name": "s4", "d_state": 64, "n_ssm": 0, "dt_transform": "exp"}


def _diffwave(backbone: dict[str, Any]) -> dict[str, Any]:
    return {
        "model": {"name": "diffwave", "T": 200, "beta_0": 1e-4, "beta_T": 0.02,
                  "step_embed": [128, 512, 512], "backbone": backbone},
        "dataset": dict(_DIFFWAVE_DATA),
        "train": dict(_DIFFWAVE_TRAIN),
        "generate": {"n_samples": 16, "n_batch": 16, "l_sample": 16000},
    }  # fmt: skip


def _sashimi_denoiser(d_model: int, *, bidirectional: bool = True) -> dict[str, Any]:
    return {"name": "sashimi", "d_model": d_model, "n_layers": 6, "pool": [4, 4], "expand": 2,
            "ff": 2, "unet": True, "bidirectional": bidirectional, "glu": True,
            "norm": "scalar", "l_max": 16000, "kernel": dict(_DIFFWAVE_S4)}  # fmt: skip


def _wavenet_denoiser(res: int, skip: int, layers: int, blocks: int) -> dict[str, Any]:
    return {"name": "wavenet", "residual_channels": res, "skip_channels": skip,
            "layers": layers, "blocks": blocks, "kernel_size": 3}  # fmt: skip


def diffwave_sc09() -> dict[str, Any]:
    """DiffWave with its WaveNet on SC09 (36 layers, 256 channels, dilation cycle 12:
    24,071,681 parameters, the reference's count)."""
    return _diffwave(_wavenet_denoiser(256, 256, 12, 3))


def diffwave_small_sc09() -> dict[str, Any]:
    """Small DiffWave (30 layers, 128 residual / 256 skip channels, cycle 10: 6,827,393)."""
    return _diffwave(_wavenet_denoiser(128, 256, 10, 3))


def sashimi_diffwave_sc09() -> dict[str, Any]:
    """DiffWave with a bidirectional SaShiMi (d_model 128, 6 layers per tier, pools 4 x 4,
    U-Net: 23,470,971 parameters, the reference's master layout)."""
    return _diffwave(_sashimi_denoiser(128))


def sashimi_diffwave_small_sc09() -> dict[str, Any]:
    """Small DiffWave + SaShiMi (d_model 64: 7,734,267 parameters, master layout)."""
    return _diffwave(_sashimi_denoiser(64))


def sashimi_diffwave_small_uni_sc09() -> dict[str, Any]:
    """Small DiffWave + unidirectional SaShiMi (causal S4 kernels in a non-causal U-Net)."""
    return _diffwave(_sashimi_denoiser(64, bidirectional=False))


PRESETS: dict[str, tuple[str, str]] = {
    "sashimi-sc09": ("sashimi_sc09", "the paper's SaShiMi on SC09 (reference experiment)"),
    "sashimi-sc09-unet": ("sashimi_sc09_unet", "SaShiMi U-Net on SC09 (reference, Sept. 2022)"),
    "sashimi-youtubemix": ("sashimi_youtubemix", "SaShiMi on YouTubeMix (reference experiment)"),
    "sashimi-beethoven": ("sashimi_beethoven", "SaShiMi on Beethoven (reference experiment)"),
    "wavenet-sc09": ("wavenet_sc09", "WaveNet baseline on SC09 (reference experiment)"),
    "wavenet-youtubemix": ("wavenet_youtubemix", "WaveNet baseline on YouTubeMix (reference)"),
    "wavenet-beethoven": ("wavenet_beethoven", "WaveNet baseline on Beethoven (reference)"),
    "samplernn-sc09": ("samplernn_sc09", "SampleRNN baseline on SC09, TBPTT (reference)"),
    "samplernn-youtubemix": ("samplernn_youtubemix", "SampleRNN on YouTubeMix, TBPTT (reference)"),
    "samplernn-beethoven": ("samplernn_beethoven", "SampleRNN on Beethoven, TBPTT (reference)"),
    "diffwave-sc09": ("diffwave_sc09", "DiffWave (WaveNet denoiser) on SC09, 24.1 M (reference)"),
    "diffwave-small-sc09": ("diffwave_small_sc09", "small DiffWave on SC09, 6.8 M (reference)"),
    "sashimi-diffwave-sc09": ("sashimi_diffwave_sc09", "DiffWave + SaShiMi on SC09, 23.5 M"),
    "sashimi-diffwave-small-sc09": (
        "sashimi_diffwave_small_sc09",
        "small DiffWave + SaShiMi on SC09, 7.7 M",
    ),
    "sashimi-diffwave-small-uni-sc09": (
        "sashimi_diffwave_small_uni_sc09",
        "small DiffWave + unidirectional SaShiMi on SC09",
    ),
}
