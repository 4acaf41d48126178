"""Run configuration: precedence, round trips and every kind of error with its exact path."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

import pytest
from attrs import Factory, field, frozen
from attrs import validators as v
from hypothesis import given, settings
from hypothesis import strategies as st

from audio_core import (
    ConfigError,
    DatasetSpec,
    GenerateConfig,
    ModelSpec,
    OptimizerConfig,
    OutputConfig,
    Registry,
    RunConfig,
    SchedulerConfig,
    TrainConfig,
    resolve_run_config,
    to_toml,
)
from audio_core.testing import check_config_roundtrip


@frozen(kw_only=True)
class KernelOptions:
    d_state: int = field(default=64, validator=v.gt(0))
    init: Literal["legs", "diag-lin"] = "legs"


@frozen(kw_only=True)
class ToyModel:
    d_model: int = field(default=64, validator=v.gt(0))
    pool: tuple[int, ...] = (4, 4)
    window: tuple[int, float] = (3, 0.5)
    dropout: float = field(default=0.0, validator=[v.ge(0.0), v.lt(1.0)])
    glu: bool = True
    kernel: KernelOptions = Factory(KernelOptions)


@frozen(kw_only=True)
class ToyData:
    root: Path = Path("data/sc09")
    sample_len: int = field(default=16000, validator=v.gt(0))


REGISTRY = Registry(
    {
        "models": [
            ModelSpec(name="toy", config_cls=ToyModel, target="m:b", summary="t"),
            ModelSpec(name="other", config_cls=ToyData, target="m:b", summary="o"),
        ],
        "datasets": [
            DatasetSpec(
                name="sc09", config_cls=ToyData, target="m:b", summary="s", aliases=("speech",)
            )
        ],
    }
)


def resolve(*overrides: str, files: tuple[Path, ...] = (), **flags: str) -> RunConfig:
    return resolve_run_config(REGISTRY, files=files, overrides=overrides, **flags)


def problems(*overrides: str, files: tuple[Path, ...] = (), **flags: str) -> tuple[str, ...]:
    with pytest.raises(ConfigError) as info:
        resolve(*overrides, files=files, **flags)
    return info.value.problems


def toml_file(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# --- precedence -------------------------------------------------------------------------


def test_defaults_apply_when_nothing_is_set() -> None:
    config = resolve(model="toy", dataset="sc09")
    assert config.model.config == ToyModel()
    assert config.dataset.config == ToyData()
    assert config.train == TrainConfig()
    assert config.train.optimizer.lr == 0.004


def test_precedence_defaults_then_files_in_order_then_flags_then_overrides(tmp_path: Path) -> None:
    base = toml_file(
        tmp_path,
        "base.toml",
        """
[model]
name = "other"
sample_len = 8000
[dataset]
name = "sc09"
sample_len = 100
[train]
batch_size = 4
seed = 7
""",
    )
    local = toml_file(
        tmp_path,
        "local.toml",
        """
[model]
name = "toy"
[dataset]
sample_len = 200
[train]
batch_size = 8
[train.optimizer]
lr = 0.001
""",
    )
    # base's [model] sample_len belongs to "other"; local switches to "toy", so it must go:
    with pytest.raises(ConfigError):
        resolve(files=(base, local))
    config = resolve("model.sample_len=1", files=(base, local), model="other")
    assert config.model.name == "other"  # --model beats both files
    assert config.model.config.sample_len == 1  # the override beats base.toml
    assert config.dataset.config.sample_len == 200  # local.toml beats base.toml
    assert config.train.batch_size == 8  # local.toml beats base.toml ...
    assert config.train.seed == 7  # ... which still beats the default
    assert config.train.optimizer.lr == 0.001  # tables merge key by key
    assert config.train.optimizer.name == "adamw"  # the default survives the merge
    later = resolve(
        "train.batch_size=16", "train.batch_size=32", files=(base, local), model="other"
    )
    assert later.train.batch_size == 32  # overrides apply in order


def test_an_override_beats_the_model_flag(tmp_path: Path) -> None:
    assert resolve("model.name=other", model="toy", dataset="sc09").model.name == "other"


def test_aliases_resolve_to_the_canonical_name() -> None:
    assert resolve(model="toy", dataset="speech").dataset.name == "sc09"


def test_overrides_reach_nested_tables_and_typed_values() -> None:
    config = resolve(
        "model.kernel.d_state=16",
        "model.kernel.init=diag-lin",
        "model.pool=[2, 2, 2]",
        "model.window=[5, 1]",
        "model.glu=false",
        "dataset.root=/data/speech commands",
        "train.optimizer.betas=[0.8, 0.99]",
        "train.scheduler.name=cosine",
        "train.max_steps=100",
        model="toy",
        dataset="sc09",
    )
    assert config.model.config.kernel == KernelOptions(d_state=16, init="diag-lin")
    assert config.model.config.pool == (2, 2, 2)
    assert config.model.config.window == (5, 1.0)
    assert config.model.config.glu is False
    assert config.dataset.config.root == Path("/data/speech commands")
    assert config.train.optimizer.betas == (0.8, 0.99)


# --- round trips ------------------------------------------------------------------------


def test_printed_toml_reads_back_as_the_same_config(tmp_path: Path) -> None:
    config = resolve("model.pool=[2, 8]", "train.seed=3", model="toy", dataset="sc09")
    again = resolve(files=(toml_file(tmp_path, "run.toml", to_toml(config)),))
    assert again == config


@pytest.mark.parametrize(
    "config_cls",
    [TrainConfig, OptimizerConfig, SchedulerConfig, GenerateConfig, OutputConfig, ToyModel],
)
def test_core_config_classes_round_trip_through_toml(config_cls: type) -> None:
    check_config_roundtrip(config_cls())


finite = {"allow_nan": False, "allow_infinity": False}


@settings(max_examples=60)
@given(
    batch_size=st.integers(1, 2**31),
    max_steps=st.integers(1, 10**9),
    seed=st.integers(0, 2**63 - 1),
    lr=st.floats(min_value=1e-12, max_value=10.0, **finite),
    betas=st.tuples(st.floats(0.0, 0.999, **finite), st.floats(0.0, 0.999, **finite)),
    scheduler=st.sampled_from(["plateau", "cosine", "constant"]),
    precision=st.sampled_from(["fp32", "bf16"]),
)
def test_train_configs_round_trip(
    batch_size: int,
    max_steps: int,
    seed: int,
    lr: float,
    betas: tuple[float, float],
    scheduler: Literal["plateau", "cosine", "constant"],
    precision: Literal["fp32", "bf16"],
) -> None:
    check_config_roundtrip(
        TrainConfig(
            batch_size=batch_size,
            max_steps=max_steps,
            seed=seed,
            precision=precision,
            optimizer=OptimizerConfig(lr=lr, betas=betas),
            scheduler=SchedulerConfig(name=scheduler),
        )
    )


def test_check_config_roundtrip_catches_a_lossy_field() -> None:
    @frozen
    class Doubling:
        width: int = field(default=2, converter=lambda x: x * 2)  # not idempotent: 4 -> 8

    with pytest.raises(AssertionError, match="round trip changed"):
        check_config_roundtrip(Doubling())


# --- errors, each with its exact path ---------------------------------------------------

BASE = {"model": "toy", "dataset": "sc09"}


def test_unknown_keys_name_the_path_and_the_closest_field() -> None:
    assert problems("model.d_modle=128", "modle.x=1", "model.kernel.dstate=2", **BASE) == (
        "extra fields found (dstate) @ $.model.kernel — did you mean 'd_state'? "
        "(from override 'model.kernel.dstate=2')",
        "extra fields found (d_modle) @ $.model — did you mean 'd_model'? "
        "(from override 'model.d_modle=128')",
        "extra fields found (modle) @ $ — did you mean 'model'? (from override 'modle.x=1')",
    )


def test_wrong_types_are_refused_without_coercion() -> None:
    assert problems(
        "model.d_model=1.5",
        "model.glu=1",
        "model.dropout=true",
        "train.seed='3'",
        **BASE,
    ) == (
        "expected an integer, got float 1.5 @ $.model.d_model (from override 'model.d_model=1.5')",
        "expected a number, got boolean true @ $.model.dropout "
        "(from override 'model.dropout=true')",
        "expected true or false, got integer 1 @ $.model.glu (from override 'model.glu=1')",
        "expected an integer, got string '3' @ $.train.seed (from override \"train.seed='3'\")",
    )


def test_a_number_where_text_is_expected_suggests_quoting() -> None:
    assert problems("dataset.root=2024", **BASE) == (
        "expected a string, got integer 2024 (to mean the text, quote it: '\"2024\"') "
        "@ $.dataset.root (from override 'dataset.root=2024')",
    )
    assert resolve('dataset.root="2024"', **BASE).dataset.config.root == Path("2024")


def test_literals_list_the_allowed_values() -> None:
    assert problems("model.kernel.init=diag-lni", "train.precision=fp16", **BASE) == (
        "expected one of 'legs', 'diag-lin'; got string 'diag-lni' — did you mean 'diag-lin'? "
        "@ $.model.kernel.init (from override 'model.kernel.init=diag-lni')",
        "expected one of 'fp32', 'bf16'; got string 'fp16' — did you mean 'bf16'? "
        "@ $.train.precision (from override 'train.precision=fp16')",
    )


def test_arrays_report_the_bad_index_and_the_wrong_length() -> None:
    assert problems("model.pool=[4, 'x', 2.5]", "model.window=[1]", "model.glu=[]", **BASE) == (
        "expected an integer, got string 'x' @ $.model.pool[1] "
        "(from override \"model.pool=[4, 'x', 2.5]\")",
        "expected an integer, got float 2.5 @ $.model.pool[2] "
        "(from override \"model.pool=[4, 'x', 2.5]\")",
        "expected an array of 2 values, got 1: [1] @ $.model.window "
        "(from override 'model.window=[1]')",
        "expected true or false, got array [] @ $.model.glu (from override 'model.glu=[]')",
    )


def test_a_scalar_where_an_array_is_expected() -> None:
    assert problems("model.pool=4", **BASE) == (
        "expected an array, got integer 4 @ $.model.pool (from override 'model.pool=4')",
    )


def test_validators_report_at_their_field_even_beside_other_errors() -> None:
    assert problems("model.d_model=0", "model.dropout=1.0", "model.d_modle=1", **BASE) == (
        "'d_model' must be > 0: 0 @ $.model.d_model (from override 'model.d_model=0')",
        "'dropout' must be < 1.0: 1.0 @ $.model.dropout (from override 'model.dropout=1.0')",
        "extra fields found (d_modle) @ $.model — did you mean 'd_model'? "
        "(from override 'model.d_modle=1')",
    )


def test_cross_field_rules_report_at_their_section() -> None:
    assert problems("train.max_epochs=0", **BASE) == (
        "set train.max_steps or train.max_epochs: both are 0 (no limit) @ $.train "
        "(from override 'train.max_epochs=0')",
    )
    assert problems("generate.l_prefix=16000", **BASE) == (
        "generate.l_prefix (16000) must be shorter than generate.l_sample (16000) "
        "@ $.generate (from override 'generate.l_prefix=16000')",
    )


def test_a_table_where_a_value_is_expected_and_the_reverse() -> None:
    assert problems("train.optimizer=3", **BASE) == (
        "expected a table, got integer 3 @ $.train.optimizer (from override 'train.optimizer=3')",
    )
    assert problems("model.d_model={a=1}", **BASE) == (
        "expected an integer, got table @ $.model.d_model (from override 'model.d_model={a=1}')",
    )


def test_unknown_and_missing_names_list_the_installed_ones() -> None:
    assert problems(model="toi", dataset="sc09") == (
        "unknown model 'toi' — did you mean 'toy'? (installed: other, toy) @ $.model.name "
        "(from --model)",
    )
    assert problems(dataset="sc09") == (
        "required field missing: choose a model with --model NAME (installed: other, toy) "
        "@ $.model.name",
    )
    assert problems() == (
        "required field missing: choose a model with --model NAME (installed: other, toy) "
        "@ $.model.name",
        "required field missing: choose a dataset with --dataset NAME (installed: sc09) "
        "@ $.dataset.name",
    )


def test_errors_name_the_file_that_set_the_value(tmp_path: Path) -> None:
    path = toml_file(tmp_path, "run.toml", '[model]\nname = "toy"\nd_model = -4\n')
    assert problems(files=(path,), dataset="sc09") == (
        f"'d_model' must be > 0: -4 @ $.model.d_model (from {path})",
    )


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "no such file"),
        (
            "[model\n",
            "invalid TOML: Expected ']' at the end of a table declaration (at line 1, column 7)",
        ),
        (b"\xff\xfe", "not UTF-8 text, expected a TOML file"),
    ],
)
def test_unreadable_config_files_are_one_line_errors(
    tmp_path: Path, content: str | bytes | None, expected: str
) -> None:
    path = tmp_path / "run.toml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    assert problems(files=(path,)) == (f"--config {path}: {expected}",)


def test_a_folder_given_as_config_file(tmp_path: Path) -> None:
    assert problems(files=(tmp_path,)) == (
        f"--config {tmp_path}: is a folder, expected a TOML file",
    )


def test_setting_inside_a_value_is_refused_naming_both_sources() -> None:
    assert problems("train.seed=1", "train.seed.x=2", **BASE) == (
        "override 'train.seed.x=2': cannot set train.seed.x: train.seed is already integer 1 "
        "(from override 'train.seed=1'), not a table",
    )


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        (
            "model.d_model",
            "override 'model.d_model' must have the form KEY=VALUE (e.g. model.d_model=128)",
        ),
        ("=3", "override '=3': '' is not a dotted key such as model.d_model"),
        (
            "model..x=3",
            "override 'model..x=3': 'model..x' is not a dotted key such as model.d_model",
        ),
        (
            "model.d-model=3",
            "override 'model.d-model=3': 'model.d-model' is not a dotted key such as model.d_model",
        ),
    ],
)
def test_malformed_overrides(token: str, expected: str) -> None:
    assert problems(token, **BASE) == (expected,)


def test_output_name_must_not_be_a_path() -> None:
    assert problems("output.name=../elsewhere", **BASE) == (
        "'name' must be a plain folder name, not a path: '../elsewhere' (set output.root for the "
        "parent folder) @ $.output.name (from override 'output.name=../elsewhere')",
    )


def test_valid_config_files_parse_with_tomllib(tmp_path: Path) -> None:
    text = to_toml(resolve(**BASE))
    data = tomllib.loads(text)
    assert list(data) == ["model", "dataset", "train", "generate", "output"]
    assert data["model"]["name"] == "toy"
    assert data["model"]["kernel"] == {"d_state": 64, "init": "legs"}
    assert data["output"]["root"] == "runs"
