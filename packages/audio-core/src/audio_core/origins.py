"""Where plugins come from: the names audio-run uses for them and :class:`PluginInfo`.

A leaf module (it imports only the hook specifications), so the registry and the commands can
describe plugins without importing the plugin manager.
"""

from __future__ import annotations

from typing import Literal

import pluggy
from attrs import frozen

from .hookspecs import PROJECT_NAME

#: Entry-point group scanned for plugins (the same string as the pluggy project name).
ENTRY_POINT_GROUP = PROJECT_NAME
#: Name under which audio-core registers its own plugin (also its entry-point name).
BUILTIN_NAME = "sashimi-audio-core"
#: Comma-separated plugin modules to register, as with ``--plugin``.
ENV_PLUGINS = "AUDIO_RUN_PLUGINS"
#: Comma-separated plugin names (entry-point names or module names) never to register.
ENV_DISABLE = "AUDIO_RUN_DISABLE_PLUGINS"

Source = Literal["builtin", "entry point", "--plugin", "AUDIO_RUN_PLUGINS", "direct"]


@frozen(kw_only=True)
class PluginInfo:
    """Where a registered plugin came from.

    Attributes:
        name: the name it is registered under (the entry-point name, e.g.
            ``"sashimi-ssm-kernels"``, or the module name for ``--plugin`` modules).
        module: the module (or ``module:attr``) that holds its hook implementations.
        source: how it was registered.
        dist: the distribution that ships it, or ``None`` (a module on ``PYTHONPATH``).
        version: that distribution's version, or ``None``.
    """

    name: str
    module: str
    source: Source
    dist: str | None = None
    version: str | None = None

    @property
    def label(self) -> str:
        """``dist==version``, or ``module NAME`` for plugins outside any distribution."""
        if self.dist is not None:
            return f"{self.dist}=={self.version}"
        return f"module {self.module}"


def plugin_info(pm: pluggy.PluginManager, name: str) -> PluginInfo:
    """Origin of the plugin registered as ``name`` in any pluggy manager.

    Raises:
        KeyError: no plugin of that name is registered.
    """
    known: dict[str, PluginInfo] = getattr(pm, "_infos", {})  # an AudioPluginManager's
    if name in known:
        return known[name]
    plugin = pm.get_plugin(name)
    if plugin is None:
        raise KeyError(f"no plugin named {name!r} is registered")
    module = getattr(plugin, "__name__", type(plugin).__qualname__)
    return PluginInfo(name=name, module=module, source="direct")
