"""Named registries: every model, dataset, loss, optimizer, schedule, metric and explainer by name.

An entry is a callable registered with a decorator. Its *settings* (what a YAML section may set) are
either the fields of a config dataclass (models, nanoGPT-style) or the callable's keyword-only
parameters; positional parameters are runtime objects (model parameters, the data spec) that never
appear in a config. Settings are validated against their type annotations with pydantic before
anything is built, so a typo or a bad value is reported with its dotted path.

A registry fills itself: it knows the modules whose import registers its entries and imports them the first time
it is asked for a name, so a command pays only for the registries it reads (`dlx runs` none, `dlx list losses` one).
"""
from __future__ import annotations

import dataclasses
import fnmatch
import importlib
import inspect
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import pydantic

from dlx import schema
from dlx.errors import ConfigError, UnknownName, did_you_mean


class _Settings(schema.Schema):
    model_config = pydantic.ConfigDict(arbitrary_types_allowed=True)  # a setting may be any annotated type


@dataclass(frozen=True, eq=False)
class Entry:
    name: str
    obj: Callable
    description: str
    config: type | None = None  # a dataclass of settings, passed to `obj` as its last argument
    meta: dict = field(default_factory=dict)

    @cached_property
    def _fields(self) -> dict[str, tuple[Any, Any]]:
        """setting name -> (annotation, default or ...) ."""
        if self.config is not None:
            hints = typing.get_type_hints(self.config, include_extras=True)
            return {
                f.name: (hints[f.name], f.default if f.default is not dataclasses.MISSING else ...)
                for f in dataclasses.fields(self.config)
                if f.init
            }
        target = self.obj.__init__ if inspect.isclass(self.obj) else self.obj
        settings = [p for p in inspect.signature(target).parameters.values() if p.kind is p.KEYWORD_ONLY]
        if not settings:  # its annotations name runtime types, which a module may import only when it builds
            return {}
        hints = typing.get_type_hints(target, include_extras=True)
        return {p.name: (hints.get(p.name, Any), ... if p.default is p.empty else p.default) for p in settings}

    @cached_property
    def _schema(self) -> type[pydantic.BaseModel]:
        return pydantic.create_model(f"{self.name}_settings", __base__=_Settings, **self._fields)

    def defaults(self) -> dict[str, Any]:
        return {k: d for k, (_, d) in self._fields.items() if d is not ...}

    def takes(self, setting: str) -> bool:
        return setting in self._fields

    def resolve(self, settings: dict[str, Any], path: str, section_keys: Iterable[str] = (),
                partial: bool = False) -> dict[str, Any]:
        """Validate settings and fill in defaults; raises ConfigError listing every problem.
        `section_keys`: what else the section takes (dlx's own keys), for the did-you-mean of an unknown
        setting; `partial`: check the settings given without asking for the required ones (which the
        result may then lack)."""
        problems = [
            f"{path}.{key}: unknown setting for '{self.name}'{did_you_mean(key, [*self._fields, *section_keys])}"
            for key in settings
            if key not in self._fields
        ]
        given = {k: v for k, v in settings.items() if k in self._fields}
        try:
            resolved = self._schema.model_validate(given).model_dump()
        except pydantic.ValidationError as e:
            problems += schema.problems([err for err in e.errors() if not (partial and err["type"] == "missing")], path)
            resolved = given
        if problems:
            raise ConfigError(problems)
        return resolved

    def build(self, *runtime: Any, **settings: Any) -> Any:
        if self.config is not None:
            return self.obj(*runtime, self.config(**settings))
        return self.obj(*runtime, **settings)


class Registry:
    """A namespace of entries of one kind ("model", "optimizer", ...), filled by importing `modules` on first use."""

    def __init__(self, kind: str, modules: tuple[str, ...] = ()):
        self.kind = kind
        self.modules = modules
        self._entries: dict[str, Entry] = {}
        self._aliases: dict[str, str] = {}
        self._filled = not modules

    def _fill(self) -> None:
        """Import the modules that register this kind's entries (once; entries registered from elsewhere stay)."""
        if self._filled:
            return
        self._filled = True  # first: a module being imported may itself look a name up
        try:
            for module in self.modules:
                importlib.import_module(module)
        except BaseException:
            self._filled = False
            raise

    def register(
        self, name: str, description: str | None = None, *, aliases: tuple[str, ...] = (),
        config: type | None = None, **meta: Any,
    ) -> Callable:
        def decorator(obj: Callable) -> Callable:
            if name in self._entries or name in self._aliases:
                raise ValueError(f"{self.kind} '{name}' is registered twice")
            doc = description or (inspect.getdoc(obj) or "").split("\n")[0]
            self._entries[name] = Entry(name, obj, doc, config, meta)
            for alias in aliases:
                self._aliases[alias] = name
            return obj

        return decorator

    def get(self, name: str) -> Entry:
        self._fill()
        name = self._aliases.get(name, name)
        if name not in self._entries:
            raise UnknownName(self.kind, name, [*self._entries, *self._aliases])
        return self._entries[name]

    def __contains__(self, name: str) -> bool:
        self._fill()
        return self._aliases.get(name, name) in self._entries

    def names(self) -> list[str]:
        self._fill()
        return sorted(self._entries)

    def list(self, pattern: str = "*") -> list[Entry]:
        """Entries whose name (or an alias) matches a shell-style wildcard, e.g. 'res*'."""
        self._fill()
        hits = {self._entries[n] for n in fnmatch.filter(self._entries, pattern)}
        hits |= {self._entries[t] for a, t in self._aliases.items() if fnmatch.fnmatch(a, pattern)}
        return sorted(hits, key=lambda e: e.name)

    def aliases_of(self, name: str) -> list[str]:
        self._fill()
        return sorted(a for a, target in self._aliases.items() if target == name)


ALL: dict[str, Registry] = {}  # by the plural `dlx list` takes


def _registry(plural: str, kind: str, *modules: str) -> Registry:
    ALL[plural] = Registry(kind, modules)
    return ALL[plural]


# one line per kind: its plural, its singular, and the modules whose import registers its entries
models = _registry("models", "model", "dlx.models")
datasets = _registry("datasets", "dataset", "dlx.data.families")
losses = _registry("losses", "loss", "dlx.losses")
optimizers = _registry("optimizers", "optimizer", "dlx.optim")
schedules = _registry("schedules", "schedule", "dlx.schedules")
metrics = _registry("metrics", "metric", "dlx.metrics", "dlx.sequence_metrics")
initializers = _registry("initializers", "initializer", "dlx.models.init")
explainers = _registry("explainers", "explainer", "dlx.explain")
objectives = _registry("objectives", "objective", "dlx.objectives")
