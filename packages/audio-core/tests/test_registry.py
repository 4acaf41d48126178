"""The registry: collection from plugins, duplicates, names, order, lookup."""

from __future__ import annotations

import pluggy
import pytest
from attrs import frozen

from audio_core import (
    BackboneSpec,
    DatasetSpec,
    KernelSpec,
    ModelSpec,
    Registry,
    RegistryError,
    UnknownNameError,
    hookimpl,
    hookspecs,
    make_plugin_manager,
)
from audio_core.hookspecs import PROJECT_NAME
from audio_core.manager import AudioPluginManager


@frozen
class Empty:
    """A config class with no fields."""


MODELS = """
@hookimpl
def register_models():
    return [ModelSpec(name="{name}", config_cls=ToyModelConfig, target="m:b", summary="s"{extra})]
"""


def models(name: str, extra: str = "") -> str:
    return MODELS.format(name=name, extra=extra)


def test_duplicates_across_two_distributions_name_every_provider(fake_dist) -> None:
    fake_dist(
        "alpha-audio",
        "1.2.0",
        "alpha_plugin",
        models("sashimi")
        + """
@hookimpl
def register_datasets():
    return [DatasetSpec(name="sc09", config_cls=ToyDataConfig, target="m:b", summary="s")]
""",
    )
    fake_dist(
        "beta-audio",
        "0.3.1",
        "beta_plugin",
        models("sashimi")
        + """
@hookimpl
def register_datasets():
    return [DatasetSpec(name="sc09", config_cls=ToyDataConfig, target="m:b", summary="s")]
""",
    )
    pm = make_plugin_manager()
    with pytest.raises(RegistryError) as info:
        Registry.from_plugin_manager(pm)
    assert info.value.problems == (
        "dataset name 'sc09' is provided 2 times, by alpha-audio==1.2.0, beta-audio==0.3.1; "
        "uninstall one or skip a plugin with AUDIO_RUN_DISABLE_PLUGINS=<plugin name>",
        "model name 'sashimi' is provided 2 times, by alpha-audio==1.2.0, beta-audio==0.3.1; "
        "uninstall one or skip a plugin with AUDIO_RUN_DISABLE_PLUGINS=<plugin name>",
    )


def test_disabling_one_provider_resolves_the_duplicate(fake_dist) -> None:
    fake_dist("alpha-audio", "1.2.0", "alpha_plugin", models("sashimi"))
    fake_dist("beta-audio", "0.3.1", "beta_plugin", models("sashimi"))
    pm = make_plugin_manager(environ={"AUDIO_RUN_DISABLE_PLUGINS": "beta-audio"})
    registry = Registry.from_plugin_manager(pm)
    provider = registry.provider("models", "sashimi")
    assert provider is not None
    assert provider.label == "alpha-audio==1.2.0"


def test_an_alias_clashing_with_a_name_is_a_duplicate(fake_dist) -> None:
    fake_dist("alpha-audio", "1.0", "alpha_plugin", models("s4", ', aliases=("dplr",)'))
    fake_dist("beta-audio", "2.0", "beta_plugin", models("dplr"))
    with pytest.raises(RegistryError) as info:
        Registry.from_plugin_manager(make_plugin_manager())
    assert info.value.problems == (
        "model name 'dplr' is provided 2 times, by alpha-audio==1.0, beta-audio==2.0; "
        "uninstall one or skip a plugin with AUDIO_RUN_DISABLE_PLUGINS=<plugin name>",
    )


def test_bad_records_are_all_reported_with_their_distribution(fake_dist) -> None:
    fake_dist(
        "alpha-audio",
        "1.0",
        "alpha_plugin",
        models("Bad Name")
        + """
@hookimpl
def register_backbones():
    return [ModelSpec(name="oops", config_cls=ToyModelConfig, target="m:b", summary="s")]

@hookimpl
def register_datasets():
    raise RuntimeError("dataset index missing")
""",
    )
    with pytest.raises(RegistryError) as info:
        Registry.from_plugin_manager(make_plugin_manager())
    problems = info.value.problems
    assert len(problems) == 3
    assert problems[0].startswith(
        "register_backbones() of plugin 'alpha-audio' (alpha-audio==1.0) returned ModelSpec("
    )
    assert problems[0].endswith("expected BackboneSpec records")
    assert problems[1] == (
        "model 'Bad Name' from alpha-audio==1.0: name 'Bad Name' is not a valid name (lower "
        "case letters, digits, '.', '_' and '-', starting with a letter or digit)"
    )
    assert problems[2] == (
        "register_datasets() of plugin 'alpha-audio' (alpha-audio==1.0) raised RuntimeError: "
        "dataset index missing"
    )


def fresh_manager(*plugins: object) -> AudioPluginManager:
    pm = AudioPluginManager()
    for index, plugin in enumerate(plugins):
        pm.register(plugin, name=f"throwaway-{index}")
    return pm


def test_listing_is_sorted_by_name_whatever_the_registration_order() -> None:
    class Plugin:
        @hookimpl
        def register_backbones(self) -> list[BackboneSpec]:
            return [
                BackboneSpec(name=n, config_cls=Empty, target="m:b", summary=n)
                for n in ("zeta", "alpha", "mu")
            ]

    class Other:
        @hookimpl
        def register_backbones(self) -> list[BackboneSpec]:
            return [BackboneSpec(name="beta", config_cls=Empty, target="m:b", summary="b")]

    registry = Registry.from_plugin_manager(fresh_manager(Plugin(), Other()))
    assert list(registry.backbones) == ["alpha", "beta", "mu", "zeta"]
    assert registry.names("backbones") == ("alpha", "beta", "mu", "zeta")
    assert registry.provided_by("throwaway-1")["backbones"] == ["beta"]
    assert registry.provided_by("throwaway-0")["backbones"] == ["alpha", "mu", "zeta"]
    assert registry.models == {}


def test_a_plain_pluggy_manager_works_too() -> None:
    class Plugin:
        @hookimpl
        def register_datasets(self) -> list[DatasetSpec]:
            return [DatasetSpec(name="d", config_cls=Empty, target="m:b", summary="d")]

    pm = pluggy.PluginManager(PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    pm.register(Plugin(), name="plain")
    registry = Registry.from_plugin_manager(pm)
    provider = registry.provider("datasets", "d")
    assert provider is not None
    assert (provider.name, provider.source) == ("plain", "direct")
    assert provider.label == f"module {Plugin.__qualname__}"


@pytest.fixture
def registry() -> Registry:
    return Registry(
        {
            "models": [
                ModelSpec(name="sashimi", config_cls=Empty, target="m:b", summary="s"),
                ModelSpec(name="wavenet", config_cls=Empty, target="m:b", summary="w"),
            ],
            "kernels": [
                KernelSpec(
                    name="s4", config_cls=Empty, target="m:b", summary="s4", aliases=("dplr",)
                ),
            ],
        }
    )


def test_get_resolves_aliases(registry: Registry) -> None:
    assert registry.get("kernels", "dplr") is registry.get("kernels", "s4")


def test_unknown_names_suggest_and_list_the_installed_ones(registry: Registry) -> None:
    with pytest.raises(UnknownNameError) as info:
        registry.get("models", "sashimy")
    assert str(info.value) == (
        "unknown model 'sashimy' — did you mean 'sashimi'? (installed: sashimi, wavenet)"
    )
    with pytest.raises(UnknownNameError) as info:
        registry.get("models", "transformer")
    assert str(info.value) == "unknown model 'transformer' (installed: sashimi, wavenet)"
    with pytest.raises(UnknownNameError) as info:
        registry.get("metrics", "fid")
    assert (
        str(info.value)
        == "unknown metric 'fid': no metrics are installed (see `audio-run plugins`)"
    )


def test_an_unknown_kind_is_a_value_error(registry: Registry) -> None:
    with pytest.raises(
        ValueError,
        match="kind must be one of kernels, backbones, models, datasets, metrics, presets; got",
    ):
        registry.specs("model")  # type: ignore[arg-type]
