"""The registry: every record the plugins provide, one sorted mapping per kind."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import cast

import pluggy

from ._suggest import did_you_mean
from .errors import RegistryError
from .origins import ENV_DISABLE, PluginInfo, plugin_info
from .specs import (
    KINDS,
    SPEC_CLASSES,
    BackboneSpec,
    DatasetSpec,
    KernelSpec,
    Kind,
    MetricSpec,
    ModelSpec,
    PresetSpec,
    Spec,
)


class UnknownNameError(LookupError):
    """A name (or alias) that no plugin registered; the message lists what is installed."""

    def __init__(self, kind: Kind, name: str, known: Sequence[str]) -> None:
        self.kind = kind
        self.name = name
        self.known = tuple(known)
        noun = kind[:-1]
        if self.known:
            message = (
                f"unknown {noun} {name!r}{did_you_mean(name, self.known)} "
                f"(installed: {', '.join(self.known)})"
            )
        else:
            message = f"unknown {noun} {name!r}: no {kind} are installed (see `audio-run plugins`)"
        super().__init__(message)

    def __str__(self) -> str:
        return str(self.args[0])


class Registry:
    """Every registered record, one mapping per kind, sorted by name.

    Build it from a plugin manager with :meth:`from_plugin_manager`; look records up with
    :meth:`get` (which resolves aliases) or read ``registry.models`` etc. directly.
    """

    def __init__(
        self,
        specs: Mapping[Kind, Sequence[Spec]],
        providers: Mapping[tuple[Kind, str], PluginInfo] | None = None,
    ) -> None:
        """
        Args:
            specs: records per kind; names and aliases must be unique within a kind
                (:meth:`from_plugin_manager` checks that and reports every clash).
            providers: the plugin that registered each ``(kind, name)``.
        """
        self._specs: dict[Kind, Mapping[str, Spec]] = {}
        self._aliases: dict[tuple[Kind, str], str] = {}
        for kind in KINDS:
            records = sorted(specs.get(kind, ()), key=lambda s: s.name)
            self._specs[kind] = MappingProxyType({s.name: s for s in records})
            for spec in records:
                for alias in spec.aliases:
                    self._aliases[(kind, alias)] = spec.name
        self._providers = dict(providers or {})

    @property
    def kernels(self) -> Mapping[str, KernelSpec]:
        """Kernel records by name."""
        return cast(Mapping[str, KernelSpec], self._specs["kernels"])

    @property
    def backbones(self) -> Mapping[str, BackboneSpec]:
        """Backbone records by name."""
        return cast(Mapping[str, BackboneSpec], self._specs["backbones"])

    @property
    def models(self) -> Mapping[str, ModelSpec]:
        """Model records by name."""
        return cast(Mapping[str, ModelSpec], self._specs["models"])

    @property
    def datasets(self) -> Mapping[str, DatasetSpec]:
        """Dataset records by name."""
        return cast(Mapping[str, DatasetSpec], self._specs["datasets"])

    @property
    def metrics(self) -> Mapping[str, MetricSpec]:
        """Metric records by name."""
        return cast(Mapping[str, MetricSpec], self._specs["metrics"])

    @property
    def presets(self) -> Mapping[str, PresetSpec]:
        """Preset records by name."""
        return cast(Mapping[str, PresetSpec], self._specs["presets"])

    def specs(self, kind: Kind) -> Mapping[str, Spec]:
        """Records of one kind by name, sorted."""
        if kind not in self._specs:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}")
        return self._specs[kind]

    def names(self, kind: Kind) -> tuple[str, ...]:
        """Sorted names of one kind (aliases not included)."""
        return tuple(self.specs(kind))

    def get(self, kind: Kind, name: str) -> Spec:
        """The record called ``name`` (or aliased so) among ``kind``.

        Raises:
            UnknownNameError: nothing of that kind is called so; the message suggests the
                closest name and lists the installed ones.
        """
        specs = self.specs(kind)
        canonical = self._aliases.get((kind, name), name)
        if canonical not in specs:
            raise UnknownNameError(kind, name, tuple(specs))
        return specs[canonical]

    def provider(self, kind: Kind, name: str) -> PluginInfo | None:
        """The plugin that registered ``name`` (canonical name), if known."""
        return self._providers.get((kind, name))

    def provided_by(self, plugin_name: str) -> dict[Kind, list[str]]:
        """What the plugin registered as ``plugin_name`` provides, per kind (sorted names)."""
        return {
            kind: [
                name
                for name in self._specs[kind]
                if (p := self._providers.get((kind, name))) is not None and p.name == plugin_name
            ]
            for kind in KINDS
        }

    @classmethod
    def from_plugin_manager(cls, pm: pluggy.PluginManager) -> Registry:
        """Call every plugin's ``register_*`` hooks and collect the records.

        Each hook implementation is called once, on its own, so every record is attributed to
        the plugin that returned it.

        Raises:
            RegistryError: listing, one line each, every hook that failed or returned
                something other than its record type, every invalid record, and every name
                (or alias) provided more than once within a kind, with each provider's
                ``dist==version``.
        """
        problems: list[str] = []
        specs: dict[Kind, list[Spec]] = {kind: [] for kind in KINDS}
        providers: dict[tuple[Kind, str], PluginInfo] = {}
        claims: dict[tuple[Kind, str], list[PluginInfo]] = defaultdict(list)
        for kind in KINDS:
            hook_name = f"register_{kind}"
            expected = SPEC_CLASSES[kind]
            for impl in getattr(pm.hook, hook_name).get_hookimpls():
                info = plugin_info(pm, impl.plugin_name)
                where = f"{hook_name}() of plugin {info.name!r} ({info.label})"
                if impl.hookwrapper or impl.wrapper:
                    problems.append(f"{where} is a wrapper; registry hooks cannot be wrappers")
                    continue
                try:
                    records = list(impl.function())
                except (Exception, SystemExit) as exc:  # noqa: BLE001 -- a plugin's bug: name it
                    problems.append(f"{where} raised {type(exc).__name__}: {exc}")
                    continue
                for record in records:
                    if not isinstance(record, expected):
                        problems.append(
                            f"{where} returned {record!r}; expected {expected.__name__} records"
                        )
                        continue
                    problems.extend(
                        f"{kind[:-1]} {record.name!r} from {info.label}: {p}"
                        for p in record.problems()
                    )
                    for name in (record.name, *record.aliases):
                        claims[(kind, name)].append(info)
                    specs[kind].append(record)
                    providers[(kind, record.name)] = info
        for (kind, name), infos in sorted(claims.items()):
            if len(infos) > 1:
                labels = ", ".join(sorted(i.label for i in infos))
                problems.append(
                    f"{kind[:-1]} name {name!r} is provided {len(infos)} times, by {labels}; "
                    f"uninstall one or skip a plugin with {ENV_DISABLE}=<plugin name>"
                )
        if problems:
            raise RegistryError(problems)
        return cls(specs, providers)

    def __repr__(self) -> str:
        counts = ", ".join(f"{kind}={len(self._specs[kind])}" for kind in KINDS)
        return f"Registry({counts})"
