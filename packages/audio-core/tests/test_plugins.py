"""Building the plugin manager: sources, blocking, broken plugins, unknown hooks."""

from __future__ import annotations

import pytest

from audio_core import BUILTIN_NAME, PluginError, Registry, make_plugin_manager

DATASETS = """
@hookimpl
def register_datasets():
    return [DatasetSpec(name="{name}", config_cls=ToyDataConfig, target="m:b", summary="s")]
"""


def datasets(name: str) -> str:
    return DATASETS.format(name=name)


def names(pm) -> list[str]:
    return [info.name for info in pm.infos()]


def test_the_builtin_is_always_there_and_cannot_be_disabled() -> None:
    pm = make_plugin_manager(
        load_entry_points=False, environ={"AUDIO_RUN_DISABLE_PLUGINS": BUILTIN_NAME}
    )
    info = pm.info(BUILTIN_NAME)
    assert (info.source, info.dist, info.module) == ("builtin", BUILTIN_NAME, "audio_core.plugin")
    assert pm.disabled == ()


def test_entry_points_load_with_their_distribution_and_version(fake_dist) -> None:
    fake_dist("alpha-audio", "1.2.0", "alpha_plugin", datasets("tones"))
    pm = make_plugin_manager(environ={})
    info = pm.info("alpha-audio")
    assert (info.source, info.dist, info.version, info.module) == (
        "entry point",
        "alpha-audio",
        "1.2.0",
        "alpha_plugin",
    )
    assert "alpha-audio" in names(pm)
    assert list(Registry.from_plugin_manager(pm).datasets) == ["tones"]


def test_no_plugins_skips_entry_points_but_keeps_named_modules(fake_dist, write_module) -> None:
    fake_dist("alpha-audio", "1.2.0", "alpha_plugin", datasets("tones"))
    write_module("local_plugin", datasets("local"))
    pm = make_plugin_manager(plugins=["local_plugin"], load_entry_points=False, environ={})
    assert names(pm) == ["local_plugin", BUILTIN_NAME]
    assert pm.info("local_plugin").source == "--plugin"
    assert list(Registry.from_plugin_manager(pm).datasets) == ["local"]


def test_env_plugins_and_flag_plugins_both_register(write_module) -> None:
    write_module("env_plugin", datasets("from-env"))
    write_module("flag_plugin", datasets("from-flag"))
    pm = make_plugin_manager(
        plugins=["flag_plugin"], environ={"AUDIO_RUN_PLUGINS": " env_plugin , "}
    )
    assert pm.info("env_plugin").source == "AUDIO_RUN_PLUGINS"
    assert pm.info("flag_plugin").source == "--plugin"
    assert list(Registry.from_plugin_manager(pm).datasets) == ["from-env", "from-flag"]


def test_disabling_hides_entry_points_and_named_modules(fake_dist, write_module) -> None:
    fake_dist("alpha-audio", "1.2.0", "alpha_plugin", datasets("tones"))
    write_module("local_plugin", datasets("local"))
    pm = make_plugin_manager(
        plugins=["local_plugin"],
        environ={"AUDIO_RUN_DISABLE_PLUGINS": "alpha-audio,local_plugin"},
    )
    assert names(pm) == [BUILTIN_NAME]
    assert pm.disabled == ("alpha-audio", "local_plugin")
    assert Registry.from_plugin_manager(pm).datasets == {}


def test_each_call_builds_an_independent_manager(write_module) -> None:
    write_module("local_plugin", datasets("local"))
    with_it = make_plugin_manager(plugins=["local_plugin"], environ={})
    without = make_plugin_manager(environ={})
    assert with_it.has_plugin("local_plugin")
    assert not without.has_plugin("local_plugin")


def test_a_module_that_cannot_be_imported_is_named() -> None:
    with pytest.raises(PluginError) as info:
        make_plugin_manager(plugins=["no_such_plugin_xyz"], environ={})
    assert info.value.problems == (
        "--plugin 'no_such_plugin_xyz': cannot import it: ModuleNotFoundError: No module named "
        "'no_such_plugin_xyz' (is it installed or on PYTHONPATH?)",
    )


def test_a_broken_entry_point_names_its_distribution_and_the_way_out(fake_dist) -> None:
    fake_dist("broken-audio", "0.0.1", "broken_plugin", "raise RuntimeError('boom')\n")
    fake_dist("worse-audio", "0.0.2", "worse_plugin", "import not_installed_dependency_xyz\n")
    with pytest.raises(PluginError) as info:
        make_plugin_manager(environ={})
    assert info.value.problems == (
        "plugin 'broken-audio' from broken-audio==0.0.1 failed to load (broken_plugin): "
        "RuntimeError: boom; skip it with AUDIO_RUN_DISABLE_PLUGINS=broken-audio",
        "plugin 'worse-audio' from worse-audio==0.0.2 failed to load (worse_plugin): "
        "ModuleNotFoundError: No module named 'not_installed_dependency_xyz'; skip it with "
        "AUDIO_RUN_DISABLE_PLUGINS=worse-audio",
    )
    pm = make_plugin_manager(environ={"AUDIO_RUN_DISABLE_PLUGINS": "broken-audio,worse-audio"})
    assert names(pm) == [BUILTIN_NAME]


def test_two_distributions_claiming_one_plugin_name_clash(fake_dist) -> None:
    fake_dist("alpha-audio", "1.0", "alpha_plugin", datasets("a"), entry_name="shared")
    fake_dist("beta-audio", "2.0", "beta_plugin", datasets("b"), entry_name="shared")
    with pytest.raises(PluginError) as info:
        make_plugin_manager(environ={})
    (problem,) = info.value.problems
    assert problem.startswith("entry point 'shared' of ")
    assert "alpha-audio==1.0" in problem
    assert "beta-audio==2.0" in problem
    assert problem.endswith("; uninstall one of them")


def test_a_hook_without_spec_fails_check_pending_with_a_suggestion(write_module) -> None:
    write_module(
        "typo_plugin",
        """
@hookimpl
def register_kernal():
    return []
""",
    )
    with pytest.raises(PluginError) as info:
        make_plugin_manager(plugins=["typo_plugin"], environ={})
    assert info.value.problems == (
        "plugin 'typo_plugin' (module typo_plugin) implements 'register_kernal', which is not "
        "an audio_run hook — did you mean 'register_kernels'?",
    )


def test_an_optional_hook_without_spec_is_allowed(write_module) -> None:
    write_module(
        "future_plugin",
        """
@hookimpl(optionalhook=True)
def register_vocoders():
    return []
""",
    )
    pm = make_plugin_manager(plugins=["future_plugin"], environ={})
    assert pm.has_plugin("future_plugin")


def test_a_hook_with_arguments_the_spec_lacks_is_refused(write_module) -> None:
    write_module(
        "args_plugin",
        """
@hookimpl
def register_models(config):
    return []
""",
    )
    with pytest.raises(PluginError) as info:
        make_plugin_manager(plugins=["args_plugin"], environ={})
    (problem,) = info.value.problems
    assert problem.startswith("plugin 'args_plugin' (module args_plugin): ")
    assert "register_models" in problem
    assert "\n" not in problem
