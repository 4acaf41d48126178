"""Building the plugin manager: built-ins, named modules, entry points, blocking.

There is no global plugin manager: every caller (the CLI, a test, a notebook) builds its own
with :func:`make_plugin_manager`, so tests can register throwaway plugins on a fresh one.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import re
from collections.abc import Mapping, Sequence

import pluggy

from . import hookspecs
from . import plugin as builtin
from ._suggest import did_you_mean
from .errors import PluginError
from .hookspecs import PROJECT_NAME
from .origins import (
    BUILTIN_NAME,
    ENTRY_POINT_GROUP,
    ENV_DISABLE,
    ENV_PLUGINS,
    PluginInfo,
    Source,
    plugin_info,
)

__all__ = [
    "BUILTIN_NAME",
    "ENTRY_POINT_GROUP",
    "ENV_DISABLE",
    "ENV_PLUGINS",
    "AudioPluginManager",
    "PluginInfo",
    "make_plugin_manager",
    "plugin_info",
]


def _one_line(text: str) -> str:
    return "; ".join(line.strip() for line in text.splitlines() if line.strip())


def _split_names(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _dist_version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


class AudioPluginManager(pluggy.PluginManager):
    """A pluggy ``PluginManager`` of the ``audio_run`` hooks that remembers plugins' origins."""

    def __init__(self) -> None:
        super().__init__(PROJECT_NAME)
        self.add_hookspecs(hookspecs)
        self._infos: dict[str, PluginInfo] = {}
        #: Names blocked through ``AUDIO_RUN_DISABLE_PLUGINS`` (or ``set_blocked``).
        self.disabled: tuple[str, ...] = ()

    def register_plugin(self, plugin: object, info: PluginInfo) -> bool:
        """Register ``plugin`` under ``info.name``; ``False`` when that name is blocked.

        Raises:
            PluginError: a hook implementation does not match its specification.
        """
        if self.is_blocked(info.name):
            return False
        try:
            registered = self.register(plugin, name=info.name)
        except pluggy.PluginValidationError as exc:
            problem = f"plugin {info.name!r} ({info.label}): {_one_line(str(exc))}"
            raise PluginError([problem]) from exc
        if registered is None:
            return False
        self._infos[info.name] = info
        return True

    def info(self, name: str) -> PluginInfo:
        """Origin of the plugin registered as ``name`` (``source="direct"`` if registered raw)."""
        return plugin_info(self, name)

    def infos(self) -> list[PluginInfo]:
        """Every registered plugin's origin, sorted by name."""
        registered = (name for name, plugin in self.list_name_plugin() if plugin is not None)
        return sorted((self.info(name) for name in registered), key=_by_name)  # None: blocked

    def check_pending(self) -> None:
        """Fail on hook implementations that match no hook, naming plugin and likely hook.

        Raises:
            PluginError: one line per unknown hook implementation.
        """
        known = [name for name in vars(self.hook) if not name.startswith("_")]
        known_specs = [n for n in known if getattr(self.hook, n).has_spec()]
        problems = []
        for name in sorted(known):
            caller = getattr(self.hook, name)
            if caller.has_spec():
                continue
            for impl in caller.get_hookimpls():
                if impl.optionalhook:
                    continue
                info = self.info(impl.plugin_name)
                problems.append(
                    f"plugin {info.name!r} ({info.label}) implements {name!r}, which is not an "
                    f"{PROJECT_NAME} hook{did_you_mean(name, known_specs)}"
                )
        if problems:
            raise PluginError(problems)
        super().check_pending()


def _by_name(info: PluginInfo) -> str:
    return info.name


_MODULE_NAME = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")


def _failure(exc: BaseException) -> str:
    """``Type: message`` of anything a plugin's import raised, on one line (``sys.exit`` in
    a plugin module included)."""
    if isinstance(exc, SystemExit):
        return f"it called sys.exit({exc.code!r})"
    where = ""
    if isinstance(exc, SyntaxError) and exc.filename:
        where = f" ({exc.filename}, line {exc.lineno})"
    return f"{type(exc).__name__}: {_one_line(str(exc))}{where}"


def _import_plugin_module(module_name: str, source: Source) -> object:
    """Import a module named by ``--plugin`` / ``AUDIO_RUN_PLUGINS``.

    Raises:
        PluginError: one line naming the module and whatever its import raised.
    """
    if not _MODULE_NAME.match(module_name):
        raise PluginError(
            [f"{source} {module_name!r}: not a module name (dotted Python identifiers)"]
        )
    try:
        return importlib.import_module(module_name)
    except ImportError as exc:
        hint = " (is it installed or on PYTHONPATH?)" if exc.name == module_name else ""
        raise PluginError(
            [f"{source} {module_name!r}: cannot import it: {type(exc).__name__}: {exc}{hint}"]
        ) from exc
    except (Exception, SystemExit) as exc:  # noqa: BLE001 -- a broken plugin: name it, no traceback
        dist, version = _module_dist(module_name)
        label = f" ({dist}=={version})" if dist else ""
        raise PluginError(
            [f"{source} {module_name!r}{label}: importing it failed: {_failure(exc)}"]
        ) from None


def _module_dist(module_name: str) -> tuple[str | None, str | None]:
    top = module_name.partition(".")[0]
    dists = importlib.metadata.packages_distributions().get(top, [])
    if not dists:
        return None, None
    return dists[0], _dist_version(dists[0])


def _load_entry_points(pm: AudioPluginManager) -> None:
    problems = []
    eps = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    for ep in sorted(eps, key=lambda e: (e.name, e.value)):
        dist = ep.dist.name if ep.dist is not None else None
        version = ep.dist.version if ep.dist is not None else None
        info = PluginInfo(
            name=ep.name, module=ep.value, source="entry point", dist=dist, version=version
        )
        if pm.is_blocked(ep.name):
            continue
        if pm.has_plugin(ep.name):
            existing = pm.info(ep.name)
            if existing.dist != dist:
                problems.append(
                    f"entry point {ep.name!r} of {info.label} clashes with the plugin of that "
                    f"name from {existing.label}; uninstall one of them"
                )
            continue
        try:
            plugin = ep.load()
        except (Exception, SystemExit) as exc:  # noqa: BLE001 -- a broken plugin: report, go on
            problems.append(
                f"plugin {ep.name!r} from {info.label} failed to load ({ep.value}): "
                f"{_failure(exc)}; skip it with {ENV_DISABLE}={ep.name}"
            )
            continue
        if pm.is_registered(plugin):  # the same module was already named by --plugin
            continue
        try:
            pm.register_plugin(plugin, info)
        except PluginError as exc:
            problems.extend(exc.problems)
    if problems:
        raise PluginError(problems)


def make_plugin_manager(
    *,
    plugins: Sequence[str] = (),
    load_entry_points: bool = True,
    environ: Mapping[str, str] | None = None,
) -> AudioPluginManager:
    """Build a fresh plugin manager with every plugin this process should see.

    In order: audio-core's built-in plugin is registered (it cannot be disabled); names in
    ``AUDIO_RUN_DISABLE_PLUGINS`` are blocked; modules named by ``AUDIO_RUN_PLUGINS`` and then
    ``plugins`` (the CLI's ``--plugin``) are imported and registered under their module names;
    unless
    ``load_entry_points`` is false (``--no-plugins``), every ``audio_run`` entry point is
    loaded; finally :meth:`~AudioPluginManager.check_pending` rejects unknown hooks.

    Args:
        plugins: module names to register, like ``--plugin``.
        load_entry_points: whether to load installed distributions' entry points.
        environ: the environment to read (default ``os.environ``).

    Raises:
        PluginError: a module cannot be imported, a plugin fails to load, two distributions
            claim the same plugin name, or a hook implementation is invalid.
    """
    env = os.environ if environ is None else environ
    pm = AudioPluginManager()
    pm.register_plugin(  # before blocking: the CLI's own commands live here
        builtin,
        PluginInfo(
            name=BUILTIN_NAME,
            module=builtin.__name__,
            source="builtin",
            dist=BUILTIN_NAME,
            version=_dist_version(BUILTIN_NAME),
        ),
    )
    pm.disabled = tuple(n for n in _split_names(env.get(ENV_DISABLE, "")) if n != BUILTIN_NAME)
    for name in pm.disabled:
        pm.set_blocked(name)
    named: list[tuple[Source, str]] = [
        *(("AUDIO_RUN_PLUGINS", m) for m in _split_names(env.get(ENV_PLUGINS, ""))),
        *(("--plugin", m) for m in plugins),
    ]
    for source, module_name in named:
        if pm.is_blocked(module_name) or pm.has_plugin(module_name):
            continue
        module = _import_plugin_module(module_name, source)
        dist, version = _module_dist(module_name)
        pm.register_plugin(
            module,
            PluginInfo(
                name=module_name, module=module_name, source=source, dist=dist, version=version
            ),
        )
    if load_entry_points:
        _load_entry_points(pm)
    pm.check_pending()
    return pm
