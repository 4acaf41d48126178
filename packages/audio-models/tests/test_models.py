"""The three autoregressive models: recurrent == teacher-forced, causality, likelihoods.

One contract suite over every model, tiny sizes, no per-class branches in the assertions.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest
import torch

from audio_core.config import BackboneChoice
from audio_models.builders import build_lm, build_samplernn, build_sashimi, build_wavenet
from audio_models.config import LMConfig, SampleRNNConfig, SaShiMiModelConfig, WaveNetConfig
from audio_models.lm import IGNORE_INDEX, AutoregressiveModel, BackboneLM
from audio_models.plugin import register_backbones
from audio_models.sampling import sample_logits
from audio_models.testing import sashimi_config

BITS = 4
WAVENET = WaveNetConfig(
    layers=3,
    blocks=2,
    residual_channels=8,
    dilation_channels=6,
    skip_channels=8,
    end_channels=8,
    kernel_size=3,
    d_model=8,
    d_output=8,
    bits=BITS,
)
WAVENET_BACKBONE = next(s for s in register_backbones() if s.name == "wavenet")
TINY: dict[str, Callable[[], AutoregressiveModel]] = {
    "sashimi-s4": lambda: build_sashimi(
        sashimi_config(
            d_model=8, n_layers=1, pool=(2, 3), d_state=4, l_max=40, bits=BITS, dropout=0.1
        )
    ),
    "sashimi-s4d-unet-layernorm": lambda: build_sashimi(
        sashimi_config(
            d_model=8,
            n_layers=1,
            pool=(2, 2),
            kernel_name="s4d",
            d_state=4,
            unet=True,
            l_max=40,
            bits=BITS,
            glu=False,
            norm="layer",
        )
    ),
    "sashimi-flat-no-ff": lambda: build_sashimi(
        sashimi_config(d_model=8, n_layers=2, pool=(), ff=0, d_state=4, l_max=40, bits=BITS)
    ),
    "wavenet": lambda: build_wavenet(WAVENET),
    "lm-over-wavenet": lambda: build_lm(
        LMConfig(
            bits=BITS,
            backbone=BackboneChoice(name="wavenet", config=WAVENET, spec=WAVENET_BACKBONE),
        )
    ),
    "samplernn-3-tiers": lambda: build_samplernn(
        SampleRNNConfig(frame_sizes=(2, 2, 2), d_hidden=8, n_rnn=2, d_model=4, bits=BITS)
    ),
    "samplernn-1-tier": lambda: build_samplernn(
        SampleRNNConfig(
            frame_sizes=(4,),
            d_hidden=8,
            n_rnn=1,
            d_model=4,
            bits=BITS,
            tbptt=0,
            dequantize="linear",
        )
    ),
}
NAMES = list(TINY)


def tokens(batch: int, length: int) -> torch.Tensor:
    return torch.randint(0, 2**BITS, (batch, length))


def stepped_logits(model: AutoregressiveModel, x: torch.Tensor, mode: str) -> torch.Tensor:
    model.setup_rnn(mode)
    state = model.default_state(x.shape[0])
    prev = torch.full((x.shape[0],), model.start_token, dtype=torch.long)
    out = []
    for t in range(x.shape[1]):
        logits, state = model.step(prev, state)
        out.append(logits)
        prev = x[:, t]
    return torch.stack(out, dim=1)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("length", [24, 37])  # 37: not a multiple of any pooling product
def test_stepping_reproduces_teacher_forcing_in_float64(name: str, length: int) -> None:
    model = TINY[name]().double().eval()
    x = tokens(2, length)
    with torch.no_grad():
        expected = model.logits(x)
        for mode in ("linear", "dense", "diagonal") if name.startswith("sashimi") else ("linear",):
            got = stepped_logits(model, x, mode)
            assert (got - expected).abs().max().item() <= 1e-8, mode


@pytest.mark.parametrize("name", NAMES)
def test_stepping_reproduces_teacher_forcing_in_float32(name: str) -> None:
    model = TINY[name]().eval()
    x = tokens(2, 37)
    with torch.no_grad():
        expected = model.logits(x)
        got = stepped_logits(model, x, "linear")
    rms = expected.square().mean().sqrt()
    assert ((got - expected).abs().max() / rms).item() <= 1e-4


@pytest.mark.parametrize("name", NAMES)
def test_outputs_never_depend_on_later_samples(name: str) -> None:
    """Logits at t are unchanged by any change to samples t, t + 1, ... (they predict x_t)."""
    model = TINY[name]().double().eval()
    x = tokens(1, 40)
    with torch.no_grad():
        base = model.logits(x)
        for t in (0, 5, 16, 33):
            changed = x.clone()
            changed[:, t:] = (
                changed[:, t:] + 1 + torch.randint(0, 5, changed[:, t:].shape)
            ) % 2**BITS
            other = model.logits(changed)
            past = (other[:, : t + 1] - base[:, : t + 1]).abs().max().item()
            # SaShiMi convolves by FFT, whose rounding spreads ~1e-17 everywhere.
            assert past <= 1e-12, (t, past)
            if t + 1 < 40:
                assert (other[:, t + 1 :] - base[:, t + 1 :]).abs().max().item() > 1e-6


@pytest.mark.parametrize("name", [n for n in NAMES if not n.startswith("sashimi")])
def test_gradient_to_later_inputs_is_exactly_zero_without_fft(name: str) -> None:
    model = TINY[name]().double().eval()
    if isinstance(model, BackboneLM):
        emb = model.embedding(model.shift_right(tokens(1, 30))).detach().requires_grad_()
        out = model.head(model.backbone(emb))
        (grad,) = torch.autograd.grad(out[0, 12].sum(), emb)
        assert torch.all(grad[0, 13:] == 0)
        assert grad[0, :13].abs().max() > 0
    else:  # SampleRNN: its frame tiers read real values; perturb through the embedding table
        x = tokens(1, 32)
        emb = model.sample_level_mlp.embedding.weight  # type: ignore[attr-defined]
        out = model.logits(x)
        (grad,) = torch.autograd.grad(out[0, 12].sum(), emb)
        later_only = set(x[0, 12:].tolist()) - set(x[0, :12].tolist())
        for token in later_only:
            assert torch.all(grad[token] == 0)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("with_prefix", [False, True])
def test_generated_log_likelihood_equals_teacher_forced(name: str, with_prefix: bool) -> None:
    model = TINY[name]().double()
    prefix = tokens(3, 7) if with_prefix else None
    gen = model.generate(
        3,
        30,
        prefix=prefix,
        temperature=0.8,
        top_p=0.9,
        batch=2,
        generator=torch.Generator().manual_seed(1),
    )
    assert gen.samples.shape == (3, 30)
    assert gen.prefix_len == (7 if with_prefix else 0)
    if prefix is not None:
        assert torch.equal(gen.samples[:, :7], prefix)
    assert model.training  # generate restores the mode it found
    with torch.no_grad():
        model.eval()
        expected = model.log_likelihood(gen.samples, start=gen.prefix_len)
    assert torch.allclose(gen.log_likelihood, expected, atol=1e-8)
    assert torch.all(gen.log_likelihood < 0)


@pytest.mark.parametrize("name", NAMES)
def test_a_few_training_steps_reduce_the_loss(name: str) -> None:
    model = TINY[name]()
    t = torch.arange(64)
    x = ((torch.sin(t / 3.0) + 1) / 2 * (2**BITS - 1)).round().long().expand(4, -1)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = model.loss(x).nats.item()
    for _ in range(60):
        optimizer.zero_grad()
        loss = model.loss(x)
        loss.nats.backward()
        optimizer.step()
    last = model.loss(x)
    assert last.nats.item() < 0.7 * first
    assert last.bits.item() == pytest.approx(last.nats.item() / 0.6931471805599453)


def test_sampling_honours_temperature_and_nucleus() -> None:
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    gen = torch.Generator().manual_seed(0)
    draws = [
        sample_logits(logits, temperature=1.0, top_p=0.6, generator=gen).item() for _ in range(300)
    ]
    assert set(draws) == {0, 1}  # 0.5 < 0.6, so the nucleus is the two most likely classes
    assert sample_logits(logits, temperature=0.0, top_p=1.0, generator=gen).item() == 0
    draws = [
        sample_logits(logits, temperature=1.0, top_p=1.0, generator=gen).item() for _ in range(2000)
    ]
    freq = torch.bincount(torch.tensor(draws), minlength=4).double() / 2000
    assert torch.allclose(
        freq, torch.tensor([0.5, 0.3, 0.15, 0.05], dtype=torch.float64), atol=0.04
    )


@pytest.mark.parametrize("batch", [1, 5])
def test_sampling_draws_torch_multinomials_stream(batch: int) -> None:
    # The draw is multinomial's own method without its checks: the same generator gives the
    # same classes as torch.multinomial, draw after draw (clips made before stay the same).
    logits = torch.randn(batch, 32, generator=torch.Generator().manual_seed(1))
    ours, theirs = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    for _ in range(200):
        drawn = sample_logits(logits, temperature=0.8, top_p=1.0, generator=ours)
        probs = torch.softmax(logits.double() / 0.8, dim=-1)
        assert torch.equal(drawn, torch.multinomial(probs, 1, generator=theirs).squeeze(-1))


def test_exponential_noise_drawn_at_once_is_the_stream_of_draws_one_by_one() -> None:
    # What lets a C step sample a block of steps from noise drawn in one call and still draw
    # the eager engine's clips (audio_models.sampling._sample_in_blocks).
    ours, theirs = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    big = torch.empty(40, 3, 256, dtype=torch.float64).exponential_(generator=ours)
    steps = [torch.empty(3, 256, dtype=torch.float64).exponential_(generator=theirs)
             for _ in range(40)]  # fmt: skip
    assert torch.equal(big, torch.stack(steps))


def test_generate_names_logits_that_are_not_finite() -> None:
    model = build_sashimi(sashimi_config(d_model=8, n_layers=1, pool=(2,), bits=4))
    with torch.no_grad():
        model.head.bias[3] = float("nan")
    with pytest.raises(ValueError, match="logits are not finite"):
        model.generate(2, 6, batch=2, engine="eager")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n": 0, "length": 5}, "n, length and batch must be >= 1; got 0, 5, 16"),
        ({"n": 1, "length": 5, "top_p": 0.0}, r"need temperature >= 0 and 0 < top_p <= 1"),
        (
            {"n": 2, "length": 5, "prefix": torch.zeros(1, 3, dtype=torch.long)},
            r"prefix must have shape \(n=2, l_prefix <= length=5\); got \(1, 3\)",
        ),
    ],
)
def test_bad_generation_arguments_are_named(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TINY["wavenet"]().generate(**kwargs)  # type: ignore[arg-type]


def test_out_of_range_tokens_are_refused() -> None:
    with pytest.raises(ValueError, match=r"class indices must lie in \[0, 15\] for bits=4; got"):
        TINY["wavenet"]().loss(torch.tensor([[3, 16]]))


def test_a_bidirectional_sashimi_cannot_generate() -> None:
    model = build_sashimi(
        sashimi_config(d_model=8, n_layers=1, pool=(2,), d_state=4, bidirectional=True, l_max=8)
    )
    model.logits(torch.zeros(1, 8, dtype=torch.long))  # the convolutional mode works
    with pytest.raises(ValueError, match="a non-causal SaShiMi has no recurrent mode"):
        model.generate(1, 4)


@pytest.mark.parametrize("name", NAMES)
def test_a_generation_state_can_be_snapshotted_and_resumed(name: str) -> None:
    """States are typed records of fixed-shape tensors: a deep copy taken mid-sequence
    continues exactly as the original does."""
    model = TINY[name]().double().eval()
    x = tokens(2, 20)
    with torch.no_grad():
        model.setup_rnn("linear")
        state = model.default_state(2)
        prev = torch.full((2,), model.start_token, dtype=torch.long)
        for t in range(9):
            _, state = model.step(prev, state)
            prev = x[:, t]
        snapshot, at = copy.deepcopy(state), prev.clone()

        def run_on(state: object, prev: torch.Tensor) -> torch.Tensor:
            outs = []
            for t in range(9, 20):
                logits, state = model.step(prev, state)
                outs.append(logits)
                prev = x[:, t]
            return torch.stack(outs, 1)

        first = run_on(state, prev)
        again = run_on(snapshot, at)
    assert torch.equal(first, again)


@pytest.mark.parametrize("name", ["sashimi-s4", "wavenet", "samplernn-3-tiers"])
def test_padding_marked_with_the_ignore_index_is_left_out_of_the_loss(name: str) -> None:
    model = TINY[name]().double().eval()
    x = tokens(2, 24)
    padded = x.clone()
    padded[:, 16:] = IGNORE_INDEX
    with torch.no_grad():
        logits = model.logits(torch.where(padded == IGNORE_INDEX, model.start_token, padded))
        logp = torch.log_softmax(logits, -1).gather(-1, x.unsqueeze(-1)).squeeze(-1)
        expected = -logp[:, :16].mean()
        got = model.loss(padded).nats
    assert float(got) == pytest.approx(float(expected), rel=1e-6)  # the loss is taken in fp32


def test_the_generic_lm_needs_a_recurrent_backbone_to_generate() -> None:
    model = BackboneLM(torch.nn.Linear(4, 4), d_model=4, d_out=4, bits=BITS)
    assert model.logits(tokens(1, 5)).shape == (1, 5, 2**BITS)
    with pytest.raises(TypeError, match="backbone Linear has no recurrent mode"):
        model.generate(1, 3)


def test_the_model_base_class_cannot_be_built() -> None:
    with pytest.raises(TypeError, match="abstract"):
        AutoregressiveModel()  # type: ignore[abstract]


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["linear", "dense", "diagonal"])
def test_the_papers_sashimi_steps_like_it_convolves_in_float32(mode: str) -> None:
    """The numerics contract at the paper's size (SC09 SaShiMi, 4.75 M weights, float32):
    stepping within 1e-4 of the RMS of the convolutional logits, in every step mode."""
    model = build_sashimi(SaShiMiModelConfig()).eval()
    x = torch.randint(0, 256, (1, 128))
    with torch.no_grad():
        expected = model.logits(x)
        got = stepped_logits(model, x, mode)
    rms = expected.square().mean().sqrt()
    assert ((got - expected).abs().max() / rms).item() <= 1e-4


# -- TBPTT and the scores audio-run test reports ---------------------------------------------------
def _tiny_samplernn(tbptt: int = 16) -> torch.nn.Module:
    torch.manual_seed(0)
    config = SampleRNNConfig(frame_sizes=(4, 2), d_hidden=16, d_model=8, tbptt=tbptt)
    return build_samplernn(config).double().eval()


@pytest.mark.parametrize("chunk", [8, 16, 24])
def test_tbptt_chunks_carrying_the_state_equal_the_whole_sequence(chunk: int) -> None:
    model = _tiny_samplernn(chunk)
    x = torch.randint(0, 256, (2, 48))
    x[1, 30:] = IGNORE_INDEX  # a short clip's padding
    with torch.no_grad():
        whole = model.loss(x).nats.double()
        state, total, count = None, 0.0, 0
        for start in range(0, 48, chunk):
            end = min(48, start + chunk)
            nats, state = model(x, chunk=(start, end), state=state)
            n = int((x[:, start:end] != IGNORE_INDEX).sum())
            total, count = total + float(nats) * n, count + n
    assert total / count == pytest.approx(float(whole), rel=1e-6)
    assert model.tbptt == chunk


def test_tbptt_backpropagates_within_a_chunk_only() -> None:
    model = _tiny_samplernn(16).float().train()
    x = torch.randint(0, 256, (2, 32))
    _, state = model(x, chunk=(0, 16), state=None)
    nats2, _ = model(x, chunk=(16, 32), state=[h.detach() for h in state])
    nats2.backward()
    assert all(h.grad_fn is not None for h in state)  # the first chunk's graph is still its own
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads
    assert all(torch.isfinite(g).all() for g in grads)
    with pytest.raises(ValueError, match=r"chunk \(16, 40\) is not inside a sequence of 32"):
        model(x, chunk=(16, 40), state=None)


def test_score_tokens_counts_match_their_definitions() -> None:
    model = _tiny_samplernn()
    x = torch.randint(0, 256, (3, 32))
    x[2, 20:] = IGNORE_INDEX
    scores = model.score_tokens(x, (1, 3, 10))
    keep = x != IGNORE_INDEX
    inputs = torch.where(keep, x, model.start_token)
    with torch.no_grad():
        logits = model.logits(inputs).double()
    logp = torch.log_softmax(logits, -1).gather(-1, inputs.unsqueeze(-1)).squeeze(-1)
    assert scores.positions == int(keep.sum()) == 3 * 32 - 12
    assert scores.nats == pytest.approx(float(-logp[keep].sum()), rel=1e-12)
    rank = (logits > logits.gather(-1, inputs.unsqueeze(-1))).sum(-1)  # classes above target
    for k in (1, 3, 10):
        assert scores.correct[k] == int(((rank < k) & keep).sum())
    assert scores.correct[1] <= scores.correct[3] <= scores.correct[10]
    with torch.no_grad():
        mean = float(model.loss(x).nats)
    assert scores.nats / scores.positions == pytest.approx(mean, rel=1e-5)
