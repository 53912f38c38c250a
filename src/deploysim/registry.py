"""The plugin registry: providers, grader kinds and log formats, built once and passed in.

Each seam is a Python entry-point group — ``deploysim.providers``, ``deploysim.grader_kinds``,
``deploysim.log_formats`` — and the built-ins register through the same groups in deploysim's
own ``pyproject.toml``, so a plugin package is a first-class citizen: ``pip install`` it and
``provider = "its-name"`` works in a run file. :meth:`Registry.discover` reads the groups once;
the resulting object is immutable and handed to the assembler, which passes what each stage
needs. There is no module-level mutable registry; tests build their own with
:meth:`Registry.replace`.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from importlib.metadata import EntryPoint, entry_points
from types import MappingProxyType
from typing import Any

GROUPS: dict[str, str] = {"providers": "deploysim.providers", "grader_kinds": "deploysim.grader_kinds",
                          "log_formats": "deploysim.log_formats"}
#: a format module without ``DETECT_PRIORITY`` is tried after the built-in specific formats and
#: before the catch-all ``openai`` format (priority 100)
DEFAULT_PRIORITY = 50


class PluginError(ValueError):
    """A plugin could not be loaded or does not have the shape its group needs."""


def _freeze(items: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(items))


@dataclass(frozen=True)
class Registry:
    providers: Mapping[str, Any] = field(default_factory=lambda: _freeze({}))
    grader_kinds: Mapping[str, Any] = field(default_factory=lambda: _freeze({}))
    #: format modules in auto-detection order
    formats: tuple[Any, ...] = ()

    # -- lookup ---------------------------------------------------------------------------
    def provider(self, name: str) -> Any:
        try:
            return self.providers[name]
        except KeyError:
            known = ", ".join(sorted(self.providers)) or "none"
            raise KeyError(f"unknown provider {name!r}; registered: {known} "
                           "(plugins register under the deploysim.providers entry points)") from None

    def grader_kind(self, name: str) -> Any:
        try:
            return self.grader_kinds[name]
        except KeyError:
            raise KeyError(f"unknown grader kind {name!r}; registered: "
                           f"{', '.join(sorted(self.grader_kinds)) or 'none'}") from None

    def format_names(self) -> list[str]:
        return [m.NAME for m in self.formats]

    # -- building -------------------------------------------------------------------------
    def replace(self, *, providers: Iterable[Any] = (), grader_kinds: Iterable[Any] = (),
                formats: Iterable[Any] = ()) -> Registry:
        """A new registry with these plugins added (replacing any of the same name)."""
        p = {**self.providers, **{x.name: x for x in providers}}
        g = {**self.grader_kinds, **{x.name: x for x in grader_kinds}}
        f = {m.NAME: m for m in (*self.formats, *formats)}
        return replace(self, providers=_freeze(p), grader_kinds=_freeze(g), formats=_ordered(f.values()))

    @classmethod
    def discover(cls, eps: Iterable[EntryPoint] | None = None) -> Registry:
        """Load every plugin of the three groups (``eps``: entry points to use instead of the
        installed ones, for tests)."""
        found: dict[str, dict[str, Any]] = {k: {} for k in GROUPS}
        pool = list(eps) if eps is not None else [ep for g in GROUPS.values() for ep in entry_points(group=g)]
        for ep in pool:
            kind = next((k for k, g in GROUPS.items() if g == ep.group), None)
            if kind is None:
                continue
            try:
                obj = ep.load()
            except Exception as err:  # a broken plugin is named, not a traceback
                raise PluginError(f"plugin {ep.name!r} ({ep.group} = {ep.value}) failed to load: "
                                  f"{type(err).__name__}: {err}") from None
            if inspect.isclass(obj):
                obj = obj()
            _check_shape(kind, ep, obj)
            found[kind][ep.name if kind != "log_formats" else obj.NAME] = obj
        if not found["providers"]:
            raise PluginError("no providers are registered: deploysim's entry points are missing — "
                              "install the "
                              "package (pip install -e .) rather than running it from a source folder")
        return cls(providers=_freeze(found["providers"]), grader_kinds=_freeze(found["grader_kinds"]),
                   formats=_ordered(found["log_formats"].values()))


def _ordered(modules: Iterable[Any]) -> tuple[Any, ...]:
    return tuple(sorted(modules, key=lambda m: (getattr(m, "DETECT_PRIORITY", DEFAULT_PRIORITY), m.NAME)))


_NEEDS: dict[str, tuple[str, ...]] = {"providers": ("name", "build", "is_local", "endpoint"),
                                      "grader_kinds": ("name", "build"),
                                      "log_formats": ("NAME", "detect", "convert")}


def _check_shape(kind: str, ep: EntryPoint, obj: Any) -> None:
    missing = [a for a in _NEEDS[kind] if not hasattr(obj, a)]
    if missing:
        raise PluginError(f"plugin {ep.name!r} ({ep.group} = {ep.value}) lacks {', '.join(missing)}")
