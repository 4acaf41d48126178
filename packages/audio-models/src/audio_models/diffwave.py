"""DiffWave: unconditional waveform generation by denoising diffusion, with a WaveNet or a
SaShiMi denoiser, as the SaShiMi paper's strongest SC09 models (its second reference codebase,
albertfgu/diffwave-sashimi).

- **Diffusion** (Ho et al. 2020): ``T`` steps (200), ``beta`` linear from ``beta_0`` (1e-4) to
  ``beta_T`` (0.02), ``alpha_t = 1 - beta_t``, ``alpha_bar_t = prod alpha``. Training draws
  ``t`` uniformly, ``x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps`` and minimises
  ``||eps - eps_theta(x_t, t)||^2`` (mean squared error). Sampling is ancestral:
  ``x_{t-1} = (x_t - beta_t / sqrt(1 - alpha_bar_t) eps_theta) / sqrt(alpha_t) + sigma_t z``
  with ``sigma_t^2 = beta~_t = beta_t (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t)``. A respaced
  schedule of ``S < T`` steps (the timesteps ``round(linspace(T - 1, 0, S))``, betas
  recomputed from their ``alpha_bar``: Nichol & Dhariwal 2021) trades quality for speed.
- **Step embedding**: ``[sin(t e_i), cos(t e_i)]`` with ``e_i = 10000^(-i / (d/2 - 1))``,
  then two linear layers with swish (``fc_t1``, ``fc_t2``); each block adds its own linear
  projection of it (``fc_t``).
- **Denoisers** take ``(batch, 1, L)`` and the steps ``(batch,)`` and return the predicted
  noise, with the reference's module names: :class:`SaShiMiDenoiser` (an input 1x1
  convolution with ReLU, the SaShiMi U-Net of DiffWave blocks with weight-normalised 1x1
  pools and no causal shift, the scalar norm, 1x1 -> ReLU -> zero-initialised 1x1) and
  :class:`WaveNetDenoiser` (DiffWave's: residual blocks of a non-causal dilated convolution,
  gated tanh, weight-normalised 1x1 residual and skip convolutions, ``sqrt(1/2)`` and
  ``sqrt(1/n)`` normalisations).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, NamedTuple, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .layers import ScalarLayerNorm
from .sampling import Generated


# -- the schedule ---------------------------------------------------------------------------
class Schedule(NamedTuple):
    """The diffusion hyperparameters over ``T`` steps (float tensors of shape ``(T,)``)."""

    beta: Tensor
    alpha: Tensor
    alpha_bar: Tensor
    sigma: Tensor
    steps: Tensor  # the original timestep of each entry (arange(T), or the respaced ones)


def linear_schedule(T: int, beta_0: float, beta_T: float, dtype: torch.dtype) -> Schedule:
    """The reference's schedule, computed in ``dtype`` in its order of operations:
    ``alpha_bar`` and ``beta~`` built by the same running products, ``sigma_0^2 = beta_0``."""
    beta = torch.linspace(beta_0, beta_T, T, dtype=dtype)
    return _from_beta(beta, torch.arange(T))


def _from_beta(beta: Tensor, steps: Tensor) -> Schedule:
    alpha = 1 - beta
    alpha_bar = alpha + 0
    beta_tilde = beta + 0
    for t in range(1, beta.shape[0]):
        alpha_bar[t] *= alpha_bar[t - 1]
        beta_tilde[t] *= (1 - alpha_bar[t - 1]) / (1 - alpha_bar[t])
    return Schedule(beta, alpha, alpha_bar, torch.sqrt(beta_tilde), steps)


def respaced(schedule: Schedule, n: int) -> Schedule:
    """``n`` of the schedule's steps, evenly spaced from the last (always kept: sampling
    starts from pure noise) to the first, with the betas that give the same ``alpha_bar``
    at them."""
    T = schedule.beta.shape[0]
    if not 1 <= n <= T:
        raise ValueError(f"generate.steps must be between 1 and the schedule's {T}; got {n}")
    if n == T:
        return schedule
    steps = torch.linspace(T - 1, 0, n).round().long().flip(0)  # a single step: T - 1
    alpha_bar = schedule.alpha_bar[steps]
    previous = torch.cat([alpha_bar.new_ones(1), alpha_bar[:-1]])
    return _from_beta(1 - alpha_bar / previous, steps)


def step_embedding(steps: Tensor, dim: int, dtype: torch.dtype) -> Tensor:
    """``(batch, dim)`` sinusoidal embedding of diffusion steps ``(batch,)``."""
    if dim % 2 or dim < 4:
        raise ValueError(f"the step embedding width must be even and >= 4; got {dim}")
    half = dim // 2
    scale = math.log(10000) / (half - 1)
    freqs = torch.exp(torch.arange(half, device=steps.device).to(dtype) * -scale)
    angles = steps.reshape(-1, 1).to(dtype) * freqs
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


def swish(x: Tensor) -> Tensor:
    return x * torch.sigmoid(x)


def step_layers(dims: Sequence[int]) -> tuple[nn.Linear, nn.Linear]:
    """The shared step-embedding layers ``fc_t1 (in -> mid)``, ``fc_t2 (mid -> out)``."""
    d_in, d_mid, d_out = dims
    return nn.Linear(d_in, d_mid), nn.Linear(d_mid, d_out)


def embed_steps(steps: Tensor, fc_t1: nn.Linear, fc_t2: nn.Linear) -> Tensor:
    """``swish(fc_t2(swish(fc_t1(sinusoid(steps)))))``."""
    e = step_embedding(steps, fc_t1.in_features, fc_t1.weight.dtype)
    out: Tensor = swish(fc_t2(swish(fc_t1(e))))
    return out


# -- convolutions ---------------------------------------------------------------------------
class WNConv1d(nn.Module):
    """A weight-normalised ``Conv1d`` as ``torch.nn.utils.weight_norm`` stores it
    (``weight_g (out, 1, 1)``, ``weight_v``, ``bias``), with "same" padding."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int = 1, dilation: int = 1) -> None:
        super().__init__()
        conv = nn.Conv1d(c_in, c_out, kernel_size, dilation=dilation)
        self.dilation, self.padding = dilation, dilation * (kernel_size - 1) // 2
        self.weight_v = nn.Parameter(conv.weight.detach().clone())
        self.weight_g = nn.Parameter(conv.weight.detach().norm(dim=(1, 2), keepdim=True))
        self.bias = nn.Parameter(cast(Tensor, conv.bias).detach().clone())

    @property
    def weight(self) -> Tensor:
        norm = self.weight_v.norm(dim=(1, 2), keepdim=True)
        weight: Tensor = self.weight_g * self.weight_v / norm
        return weight

    def forward(self, x: Tensor) -> Tensor:
        return F.conv1d(x, self.weight, self.bias, padding=self.padding, dilation=self.dilation)


class Conv(nn.Module):
    """The reference's ``Conv``: a :class:`WNConv1d` under ``.conv``."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int = 1, dilation: int = 1) -> None:
        super().__init__()
        self.conv = WNConv1d(c_in, c_out, kernel_size, dilation)

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.conv(x)
        return out


class ZeroConv1d(nn.Module):
    """A 1x1 convolution initialised to zero (the denoisers' last layer), under ``.conv``."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(c_in, c_out, 1)
        nn.init.zeros_(self.conv.weight)
        nn.init.zeros_(cast(Tensor, self.conv.bias))

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.conv(x)
        return out


def _head(c: int, c_out: int = 1) -> nn.Sequential:
    return nn.Sequential(Conv(c, c, 1), nn.ReLU(), ZeroConv1d(c, c_out))


# -- the SaShiMi denoiser -------------------------------------------------------------------
class ChannelNorm(ScalarLayerNorm):
    """:class:`ScalarLayerNorm` over the channels of ``(batch, channels, length)``."""

    def forward(self, x: Tensor) -> Tensor:
        std, mean = torch.std_mean(x, dim=-2, unbiased=False, keepdim=True)
        out: Tensor = (self.s / std) * (x - mean + self.m)
        return out


class FF(nn.Module):
    """Weight-normalised 1x1 -> GELU -> 1x1 (``ff.0``, ``ff.2``)."""

    def __init__(self, d: int, expand: int) -> None:
        super().__init__()
        self.ff = nn.Sequential(Conv(d, expand * d, 1), nn.GELU(), Conv(expand * d, d, 1))

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.ff(x)
        return out


class DiffWaveBlock(nn.Module):
    """``x + S4(norm1(x) + fc_t(e))``, then ``+ FF(norm2(.))``, over ``(batch, d, length)``."""

    def __init__(self, d: int, layer: nn.Module, *, ff: int, step_dim: int) -> None:
        super().__init__()
        self.fc_t = nn.Linear(step_dim, d)
        self.layer = layer
        self.ff = FF(d, ff)
        self.norm1 = ChannelNorm()
        self.norm2 = ChannelNorm()

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        y = self.norm1(x) + self.fc_t(emb).unsqueeze(-1)
        y, _ = self.layer(y)
        x = x + y
        out: Tensor = x + self.ff(self.norm2(x))
        return out


class DownPool(nn.Module):
    """``(batch, H, L) -> (batch, H expand, L / pool)``: groups of ``pool`` samples folded
    into the channels (``(h s)`` order), then a weight-normalised 1x1 convolution."""

    def __init__(self, d_in: int, d_out: int, pool: int) -> None:
        super().__init__()
        self.pool = pool
        self.linear = Conv(d_in * pool, d_out, 1)

    def forward(self, x: Tensor, emb: Tensor | None = None) -> Tensor:
        B, H, L = x.shape
        x = x.reshape(B, H, L // self.pool, self.pool).transpose(-1, -2)
        out: Tensor = self.linear(x.reshape(B, H * self.pool, L // self.pool))
        return out


class UpPool(nn.Module):
    """The inverse: a 1x1 convolution to ``H pool`` channels, unfolded into ``pool`` samples
    each (no causal shift: a denoiser sees the whole clip)."""

    def __init__(self, d_in: int, d_out: int, pool: int) -> None:
        super().__init__()
        self.pool, self.d_out = pool, d_out
        self.linear = Conv(d_in, d_out * pool, 1)

    def forward(self, x: Tensor, emb: Tensor | None = None) -> Tensor:
        y: Tensor = self.linear(x)
        B, _, L = y.shape
        y = y.reshape(B, self.d_out, self.pool, L).transpose(-1, -2)
        return y.reshape(B, self.d_out, L * self.pool)


class SaShiMiDenoiser(nn.Module):
    """The DiffWave SaShiMi (see the module notes). ``layer(width, length)`` builds each S4
    layer (a transposed :class:`~ssm_kernels.block.S4Block`, bidirectional for the paper's
    models); parameters ``init_conv``, ``fc_t1`` / ``fc_t2``, ``d_layers``, ``c_layers``,
    ``u_layers``, ``norm``, ``final_conv``."""

    def __init__(
        self,
        d_model: int,
        *,
        n_layers: int,
        pool: Sequence[int],
        expand: int,
        ff: int,
        unet: bool,
        layer: Callable[[int, int], nn.Module],
        step_dims: Sequence[int],
        l_max: int,
    ) -> None:
        super().__init__()
        if l_max % math.prod(pool):
            raise ValueError(
                f"l_max={l_max} must be a multiple of the pooling product {math.prod(pool)}"
            )
        self.d_model, self.unet, self.pool_product = d_model, unet, math.prod(pool)
        self.init_conv = nn.Sequential(Conv(1, d_model, 1), nn.ReLU())
        self.fc_t1, self.fc_t2 = step_layers(step_dims)
        step_dim = step_dims[2]

        def block(d: int, length: int) -> DiffWaveBlock:
            return DiffWaveBlock(d, layer(d, length), ff=ff, step_dim=step_dim)

        H, L = d_model, l_max
        down: list[nn.Module] = []
        for p in pool:
            if unet:
                down += [block(H, L) for _ in range(n_layers)]
            down.append(DownPool(H, H * expand, p))
            H, L = H * expand, L // p
        self.d_layers = nn.ModuleList(down)
        self.c_layers = nn.ModuleList(block(H, L) for _ in range(n_layers))
        up: list[nn.Module] = []
        for p in reversed(pool):
            H, L = H // expand, L * p
            up.append(UpPool(H * expand, H, p))
            up += [block(H, L) for _ in range(n_layers)]
        self.u_layers = nn.ModuleList(up)
        self.norm = ChannelNorm()
        self.final_conv = _head(d_model)

    def forward(self, x: Tensor, steps: Tensor) -> Tensor:
        if x.shape[-1] % self.pool_product:
            raise ValueError(
                f"a SaShiMi denoiser needs a length that is a multiple of {self.pool_product}; "
                f"got {x.shape[-1]}"
            )
        emb = embed_steps(steps, self.fc_t1, self.fc_t2)
        x = self.init_conv(x)
        outputs = []
        for layer in self.d_layers:
            outputs.append(x)
            x = layer(x, emb)
        outputs.append(x)
        for layer in self.c_layers:
            x = layer(x, emb)
        x = x + outputs.pop()
        for layer in self.u_layers:
            x = layer(x, emb)
            if self.unet or isinstance(layer, UpPool):
                x = x + outputs.pop()
        out: Tensor = self.final_conv(self.norm(x))
        return out


# -- the WaveNet denoiser -------------------------------------------------------------------
class ResidualBlock(nn.Module):
    """``(x + res(g)) sqrt(1/2)`` and ``skip(g)`` with ``g = tanh(a) sigmoid(b)`` and
    ``(a, b) = dilated_conv(x + fc_t(e))``."""

    def __init__(self, res: int, skip: int, *, dilation: int, kernel_size: int, step_dim: int):
        super().__init__()
        self.res = res
        self.fc_t = nn.Linear(step_dim, res)
        self.dilated_conv_layer = Conv(res, 2 * res, kernel_size, dilation)
        self.res_conv = WNConv1d(res, res, 1)
        self.skip_conv = WNConv1d(res, skip, 1)

    def forward(self, x: Tensor, emb: Tensor) -> tuple[Tensor, Tensor]:
        h = self.dilated_conv_layer(x + self.fc_t(emb).unsqueeze(-1))
        gated = torch.tanh(h[:, : self.res]) * torch.sigmoid(h[:, self.res :])
        return (x + self.res_conv(gated)) * math.sqrt(0.5), self.skip_conv(gated)


class ResidualGroup(nn.Module):
    """The step-embedding layers and the residual blocks; returns the summed skips times
    ``sqrt(1 / n)``."""

    def __init__(
        self, res: int, skip: int, *, n_layers: int, cycle: int, kernel_size: int,
        step_dims: Sequence[int],
    ) -> None:  # fmt: skip
        super().__init__()
        self.fc_t1, self.fc_t2 = step_layers(step_dims)
        self.residual_blocks = nn.ModuleList(
            ResidualBlock(res, skip, dilation=2 ** (n % cycle), kernel_size=kernel_size,
                          step_dim=step_dims[2])
            for n in range(n_layers)
        )  # fmt: skip

    def forward(self, x: Tensor, steps: Tensor) -> Tensor:
        emb = embed_steps(steps, self.fc_t1, self.fc_t2)
        skip: Tensor | float = 0.0
        for block in self.residual_blocks:
            x, s = block(x, emb)
            skip = skip + s
        return cast(Tensor, skip) * math.sqrt(1.0 / len(self.residual_blocks))


class WaveNetDenoiser(nn.Module):
    """DiffWave's WaveNet (``init_conv``, ``residual_layer``, ``final_conv``)."""

    def __init__(
        self, *, res: int, skip: int, n_layers: int, cycle: int, kernel_size: int,
        step_dims: Sequence[int],
    ) -> None:  # fmt: skip
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError(
                f"a WaveNet denoiser's convolutions are centred: kernel_size must be odd "
                f"(DiffWave's 3); got {kernel_size}"
            )
        self.init_conv = nn.Sequential(Conv(1, res, 1), nn.ReLU())
        self.residual_layer = ResidualGroup(
            res, skip, n_layers=n_layers, cycle=cycle, kernel_size=kernel_size,
            step_dims=step_dims,
        )  # fmt: skip
        self.final_conv = _head(skip)

    def forward(self, x: Tensor, steps: Tensor) -> Tensor:
        out: Tensor = self.final_conv(self.residual_layer(self.init_conv(x), steps))
        return out


# -- the model ------------------------------------------------------------------------------
class DiffusionLoss(NamedTuple):
    """A diffusion model's training objective: the noise-prediction mean squared error."""

    value: Tensor


class DiffWave(nn.Module):
    """A denoising diffusion model of waveforms in ``[-1, 1]`` around a denoiser network.

    What ``audio-run`` reads: ``input_kind = "waveform"`` (the runner feeds waveforms, not
    codes), ``loss_unit = "mse"`` (the objective is logged as ``train_loss`` / ``val_loss``),
    ``generate_options = ("steps",)``, ``shards_noise = True`` (``forward`` takes this
    process's ``shard`` of a distributed batch).

    Parameters: ``denoiser.*`` (the reference's ``model_state_dict`` under ``denoiser.``).
    """

    input_kind = "waveform"
    loss_unit = "mse"
    generate_options = ("steps",)
    shards_noise = True
    engines: ClassVar[dict[str, Any]] = {}

    def __init__(self, denoiser: nn.Module, *, T: int, beta_0: float, beta_T: float) -> None:
        super().__init__()
        if T < 1 or not 0 < beta_0 <= beta_T < 1:
            raise ValueError(
                f"need T >= 1 and 0 < beta_0 <= beta_T < 1; got {T}, {beta_0}, {beta_T}"
            )
        self.denoiser = denoiser
        self.T, self.beta_0, self.beta_T = T, beta_0, beta_T

    def schedule(self, dtype: torch.dtype | None = None) -> Schedule:
        """The schedule in ``dtype`` (default: the parameters'), on the parameters' device."""
        param = next(self.parameters())
        s = linear_schedule(self.T, self.beta_0, self.beta_T, dtype or param.dtype)
        return Schedule(*(t.to(param.device) for t in s))

    def denoise(self, x: Tensor, steps: Tensor) -> Tensor:
        """The predicted noise of ``x (batch, 1, L)`` at diffusion steps ``(batch,)``."""
        out: Tensor = self.denoiser(x, steps)
        return out

    def forward(self, x: Tensor, shard: tuple[int, int] = (0, 1)) -> Tensor:
        """The training objective on clean waveforms ``x (batch, L)``: noise-prediction MSE at
        uniformly drawn steps (torch's generator: resumable, seeded by the runner)."""
        return self.loss(x, shard=shard).value

    def loss(
        self,
        x: Tensor,
        generator: torch.Generator | None = None,
        *,
        shard: tuple[int, int] = (0, 1),
    ) -> DiffusionLoss:
        """The objective with its own draws: steps ``t`` then noise ``z`` for ``count``
        batches like ``x``, of which ``x``'s are the ``index``-th (``shard = (index, count)``:
        a process of a distributed run holds one slice of the global batch and draws what one
        process would draw for it)."""
        audio = x.unsqueeze(1).to(next(self.parameters()).dtype)
        B = audio.shape[0]
        index, count = shard
        rows = slice(index * B, (index + 1) * B)
        s = self.schedule()
        t = torch.randint(self.T, (B * count,), device=audio.device, generator=generator)[rows]
        z = torch.randn((B * count, *audio.shape[1:]), device=audio.device, dtype=audio.dtype,
                        generator=generator)[rows]  # fmt: skip
        abar = s.alpha_bar[t].view(B, 1, 1)
        noisy = torch.sqrt(abar) * audio + torch.sqrt(1 - abar) * z
        return DiffusionLoss(F.mse_loss(self.denoise(noisy, t), z))

    @torch.no_grad()
    def ancestral(
        self, x: Tensor, schedule: Schedule, noise: Callable[[int], Tensor],
        progress: Callable[[int], object] = lambda k: None, *, keep: bool = False,
    ) -> tuple[Tensor, list[Tensor]]:  # fmt: skip
        """Run the reverse process from ``x = x_T``; ``noise(k)`` is the ``z`` added after
        the ``k``-th update (``k = 1 ... S - 1``). Returns ``x_0`` and, with ``keep``, every
        noise prediction. The S4 kernels are computed once for the whole run."""
        from ssm_kernels.block import cached_kernels

        S, B = schedule.beta.shape[0], x.shape[0]
        predictions = []
        with cached_kernels(self):
            for k, i in enumerate(range(S - 1, -1, -1), start=1):
                eps = self.denoise(x, schedule.steps[i].expand(B).to(x.device))
                if keep:
                    predictions.append(eps)
                a, abar = schedule.alpha[i], schedule.alpha_bar[i]
                x = (x - (1 - a) / torch.sqrt(1 - abar) * eps) / torch.sqrt(a)
                if i > 0:
                    x = x + schedule.sigma[i] * noise(k)
                progress(k)
        return x, predictions

    def check_generate(
        self, *, prefix: bool, temperature: float, top_p: float, engine: str, steps: int
    ) -> None:
        """Refuse generation settings this model cannot honour (the runner asks before it
        starts).

        Raises:
            ValueError: a prefix, a temperature or a nucleus (they apply to autoregressive
                models), an engine other than ``eager``/``auto``, or ``steps`` outside
                ``0 ... T`` (0: the full schedule).
        """
        if prefix:
            raise ValueError("diffwave generates whole clips: generate.l_prefix must be 0")
        if temperature != 1.0 or top_p != 1.0:
            raise ValueError(
                "generate.temperature and generate.top_p apply to autoregressive models only"
            )
        if engine not in ("auto", "eager"):
            raise ValueError(f"diffwave has only the eager engine; got --engine {engine}")
        if not 0 <= steps <= self.T:
            raise ValueError(
                f"generate.steps must be between 1 and the schedule's {self.T}; got {steps}"
            )

    @torch.no_grad()
    def generate(
        self,
        n: int,
        length: int,
        *,
        prefix: Tensor | None = None,
        temperature: float = 1.0,
        top_p: float = 1.0,
        batch: int = 16,
        generator: torch.Generator | None = None,
        progress: Callable[[int], Any] | None = None,
        engine: str = "auto",
        steps: int = 0,
        **_: Any,
    ) -> Generated:
        """``n`` clips of ``length`` samples by ancestral sampling over the full schedule, or
        ``steps`` respaced steps; waveforms in ``[-1, 1]`` (clamped), no likelihood.

        Raises:
            ValueError: see :meth:`check_generate`.
        """
        self.check_generate(
            prefix=prefix is not None, temperature=temperature, top_p=top_p, engine=engine,
            steps=steps,
        )  # fmt: skip
        was_training = self.training
        self.eval()
        param = next(self.parameters())
        schedule = self.schedule()
        if steps:
            schedule = respaced(schedule, steps)
        S = schedule.beta.shape[0]
        clips = []
        for start in range(0, n, batch):
            b = min(batch, n - start)
            shape = (b, 1, length)

            def draw(_: int, shape: tuple[int, ...] = shape) -> Tensor:
                return torch.randn(shape, generator=generator, device=param.device,
                                   dtype=param.dtype)  # fmt: skip

            def tick(k: int, b: int = b) -> None:
                if progress is not None:
                    progress(b * length // S + (b * length % S if k == S else 0))

            x, _kept = self.ancestral(draw(0), schedule, draw, tick)
            clips.append(x[:, 0].clamp(-1, 1))
        self.train(was_training)
        samples = torch.cat(clips)
        return Generated(samples, torch.full((n,), math.nan, dtype=torch.float64), 0, "eager")


def iter_noise(noise: Tensor) -> Callable[[int], Tensor]:
    """``noise[k]`` as the ``k``-th draw (for fixed-noise runs)."""
    return lambda k: noise[k]
