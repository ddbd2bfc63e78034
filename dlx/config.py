"""From YAML to a validated, typed config: load, inherit (`base:`), override (`--set`), validate.

Every problem is collected and reported at once with its dotted path, before anything runs or is
written. Component sections (data, model, loss, optimizer, schedule) name a registry entry and carry
its settings, which are checked against the entry's signature and completed with its defaults, so
the config saved with a run holds every value that shaped it.
"""
from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import pydantic
import yaml
from pydantic import BaseModel, ConfigDict, Field

from dlx import registry
from dlx.data.augment import Augment
from dlx.data.base import Fold
from dlx.errors import ConfigError, DlxError, UnknownName, did_you_mean

RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Component(BaseModel):
    """A registry entry by name, with its settings as the remaining keys."""

    model_config = ConfigDict(extra="allow")
    name: str

    @property
    def settings(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


Fraction = Annotated[float, Field(ge=0.0, le=1.0)]


class DataSection(Component):
    split: tuple[Fraction, Fraction, Fraction] = (0.6, 0.2, 0.2)  # train/val/test; an official test split wins
    standardize: bool = True  # zero mean, unit variance per feature (per channel), estimated on train only
    reconstruct: bool = False  # the target is the input itself, not the label (autoencoders)
    augment: Augment = Augment()  # random shifts, flips, crops, rotations, colour jitter of training images
    # the seed of the split alone (None: the run's seed): committee members share it and differ in `seed`
    split_seed: Annotated[int, Field(ge=0, lt=2**63)] | None = None
    fold: Fold | None = None  # k-fold cross-validation, set by `dlx train --folds K`: {k: 5, index: 2}


class LossSection(Component):
    l1: Annotated[float, Field(ge=0.0)] = 0.0  # adds l1 * sum |w| over the weights (not biases, not norm gains)
    l2: Annotated[float, Field(ge=0.0)] = 0.0  # adds l2/2 * sum w^2 over the weights: SGD's weight decay l2


class ScheduleSection(Component):
    warmup: Annotated[int, Field(ge=0)] = 0  # steps of linear warm-up (from lr/warmup to the schedule's lr)


class TrainSection(Section):
    epochs: Annotated[int, Field(ge=1, le=1_000_000)] = 10
    batch_size: Annotated[int, Field(ge=1, le=1_000_000)] = 64
    eval_batch_size: Annotated[int, Field(ge=1, le=1_000_000)] = 1024
    device: str = "auto"  # auto (CUDA, then MPS, then CPU) | cpu | cuda | cuda:N | mps
    # CPU threads: auto chooses from the free cores and the model's work (dlx/threads.py) and the run's config.yaml
    # records the number chosen; null keeps PyTorch's choice (every core)
    threads: int | Literal["auto"] | None = "auto"
    monitor: str = "val/loss"  # the logged metric that picks best.pt and drives early stopping
    mode: Literal["auto", "min", "max"] = "auto"  # auto: min for losses and errors, max otherwise
    patience: Annotated[int, Field(ge=1)] | None = None  # early stopping after this many evaluations without improvement
    min_delta: Annotated[float, Field(ge=0.0)] = 0.0  # smaller changes of the monitored metric are no improvement
    grad_clip: Annotated[float, Field(gt=0.0)] | None = None  # clip the gradient's global L2 norm to this
    log_every: Annotated[int, Field(ge=1)] = 10  # steps between train/loss points
    checkpoint_every: Annotated[int, Field(ge=1)] = 1  # epochs between last.pt writes
    # and at least this many seconds between them, so millisecond epochs do not spend their time on the disk;
    # the last epoch, early stopping and a stop signal always write; 0: every checkpoint_every epochs
    checkpoint_seconds: Annotated[float, Field(ge=0.0)] = 10.0
    max_minutes: Annotated[float, Field(gt=0.0)] | None = None  # a time budget: then end the epoch early and finish
    # a NaN or infinite loss: stop (naming the step and the last good checkpoint), or skip that batch's update
    # (skip reads the loss every step; stop only where it is read anyway: at each log point and epoch end)
    on_nan: Literal["stop", "skip"] = "stop"
    # fast paths, each measured in bench/
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"  # autocast; fp16 adds a GradScaler against underflow
    compile: bool = False  # torch.compile the model; checkpoints keep the plain module's keys
    channels_last: bool = False  # NHWC memory layout for image models (faster convolutions on many CPUs and GPUs)
    accumulate: Annotated[int, Field(ge=1, le=4096)] = 1  # batches whose gradients add up before one optimizer step
    ema: Annotated[float, Field(gt=0.0, lt=1.0)] | None = None  # decay of an exponential moving average of the
    # weights; when set, the average is what is evaluated, checkpointed as best and summarised

    @pydantic.field_validator("threads", mode="before")
    @classmethod
    def _threads(cls, value: Any) -> Any:
        """One message for the three forms (not pydantic's one per form), and `true` is not taken for 1."""
        if value is None or value == "auto" or (type(value) is int and 1 <= value <= 1024):
            return value
        raise ValueError(f"{value!r}; give a number of threads from 1 to 1024, auto (the default: chosen from the "
                         f"free cores and the model's work) or null (PyTorch's choice: every core)")


class EvalSection(Section):
    metrics: list[str] | None = None  # metric names; None: accuracy (classification) or mse, mae (regression)


class SamplesSection(Section):
    """Text samples of a language model while it trains (the course shows text improving as training goes on)."""

    every: Annotated[int, Field(ge=1)] | None = None  # steps between samples in TensorBoard's text tab; None: none
    length: Annotated[int, Field(ge=1, le=100_000)] = 200  # new characters per sample
    prompt: str | None = None  # None: a new line, or the vocabulary's first character for text without lines
    temperature: Annotated[float, Field(ge=0.0)] = 0.8  # 0: greedy
    terminal: bool = False  # also print each sample to the terminal


class Config(Section):
    name: str
    seed: Annotated[int, Field(ge=0, lt=2**63)] = 0
    data: DataSection
    model: Component
    loss: LossSection = LossSection(name="cross_entropy")
    optimizer: Component = Component(name="adam")
    schedule: ScheduleSection = ScheduleSection(name="constant")
    train: TrainSection = TrainSection()
    eval: EvalSection = EvalSection()
    samples: SamplesSection = SamplesSection()

    @pydantic.field_validator("name")
    @classmethod
    def _plain_name(cls, name: str) -> str:
        if not RUN_NAME.match(name):
            raise ValueError("a run name is letters, digits, '.', '_' and '-', starting with a letter or digit")
        return name

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


COMPONENTS = {"data": registry.datasets, "model": registry.models, "loss": registry.losses,
              "optimizer": registry.optimizers, "schedule": registry.schedules}
# keys of a component section that dlx itself reads rather than passing them to the entry
FRAMEWORK_KEYS = {section: set(cls.model_fields) - {"name"}
                  for section, cls in (("data", DataSection), ("loss", LossSection), ("schedule", ScheduleSection))}


class _NoAliasLoader(yaml.SafeLoader):
    """YAML anchors and aliases refused: a config needs none, and nested aliases can explode in size."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.YAMLError(f"YAML aliases (*{event.anchor}) are not supported in dlx configs, "
                                 f"at line {event.start_mark.line + 1}")
        return super().compose_node(parent, index)


def read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise DlxError(f"{path}: no such config file")
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_NoAliasLoader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark
        raise DlxError(f"{path}: invalid YAML at line {mark.line + 1}, column {mark.column + 1}: {e.problem}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise DlxError(f"{path}: invalid YAML: {e}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise DlxError(f"{path}: a config is a mapping of sections (name, data, model, ...), not a {type(data).__name__}")
    return data


def merge(base: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
    """Deep merge; a section that names a different registry entry replaces the base's section whole,
    since the base's settings belong to the other entry."""
    merged = copy.deepcopy(base)
    for key, value in child.items():
        old = merged.get(key)
        if isinstance(old, dict) and isinstance(value, dict) and value.get("name", old.get("name")) == old.get("name"):
            merged[key] = merge(old, value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def read_with_bases(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    path = path.resolve()
    if path in seen:
        raise DlxError(f"{path}: 'base:' inheritance loops back to this file")
    data = read_yaml(path)
    bases = data.pop("base", [])
    bases = [bases] if isinstance(bases, str) else bases
    if not isinstance(bases, list) or not all(isinstance(b, str) for b in bases):
        raise DlxError(f"{path}: 'base' is a file name or a list of file names")
    merged: dict[str, Any] = {}
    for base in bases:
        merged = merge(merged, read_with_bases(path.parent / base, (*seen, path)))
    return merge(merged, data)


def parse_override(text: str) -> tuple[list[str], Any]:
    """'optimizer.lr=0.01' -> (['optimizer', 'lr'], 0.01); values are YAML scalars or flow lists."""
    key, sep, raw = text.partition("=")
    keys = key.strip().split(".")
    if not sep or not all(k.strip() for k in keys):
        raise DlxError(f"--set '{text}': expected KEY=VALUE with a dotted key, e.g. --set optimizer.lr=0.01")
    try:
        value = yaml.load(raw, Loader=_NoAliasLoader) if raw.strip() else None
    except yaml.YAMLError:
        raise DlxError(f"--set '{text}': '{raw}' is not a valid value (a number, word, true/false, null or [a, b])") from None
    return [k.strip() for k in keys], value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    data = copy.deepcopy(data)
    for text in overrides:
        keys, value = parse_override(text)
        node = data
        for depth, key in enumerate(keys[:-1]):
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise DlxError(f"--set '{text}': '{'.'.join(keys[:depth + 1])}' is a value, not a section")
        leaf = keys[-1]
        if leaf == "name" and len(keys) > 1 and node.get("name") not in (None, value):
            node.clear()  # another entry: the old entry's settings do not apply to it
        node[leaf] = value
    return data


def _known_keys(loc: tuple) -> list[str]:
    """Field names of the section at `loc`, for a did-you-mean on an unknown key."""
    model: Any = Config
    for key in loc:
        field = model.model_fields.get(key) if isinstance(model, type) and issubclass(model, BaseModel) else None
        if field is None:
            return []
        model = field.annotation
    return list(model.model_fields) if isinstance(model, type) and issubclass(model, BaseModel) else []


def _pydantic_problems(error: pydantic.ValidationError) -> list[str]:
    problems = []
    for err in error.errors():
        path = ".".join(str(p) for p in err["loc"]) or "config"
        if err["type"] == "extra_forbidden":
            known = _known_keys(err["loc"][:-1])
            problems.append(f"{path}: unknown key{did_you_mean(str(err['loc'][-1]), known)}")
        elif err["type"] == "missing":
            problems.append(f"{path}: missing (required)")
        else:
            problems.append(f"{path}: {err['msg'][0].lower()}{err['msg'][1:]}")
    return problems


def validate(data: dict[str, Any]) -> Config:
    """A raw mapping -> a Config whose every component is a known entry with complete, valid settings."""
    try:
        config = Config.model_validate(data)
    except pydantic.ValidationError as e:
        problems = _pydantic_problems(e)
        # the component checks still run on whatever sections are well formed, so every problem shows at once
        problems += _component_problems({k: v for k, v in data.items() if k in COMPONENTS and isinstance(v, dict)})[1]
        raise ConfigError(sorted(set(problems), key=problems.index)) from None
    raw = {k: getattr(config, k).model_dump() for k in COMPONENTS}
    resolved, problems = _component_problems(raw)
    for name in config.eval.metrics or []:
        if name not in registry.metrics:
            problems.append(f"eval.metrics: {UnknownName('metric', name, registry.metrics.names())}")
    if problems:
        raise ConfigError(problems)
    return config.model_copy(update={k: type(getattr(config, k)).model_validate(v) for k, v in resolved.items()})


def _component_problems(raw: dict[str, dict[str, Any]]) -> tuple[dict[str, dict[str, Any]], list[str]]:
    resolved, problems = {}, []
    for section, reg in COMPONENTS.items():
        body = dict(raw.get(section) or {})
        name = body.pop("name", None)
        if not isinstance(name, str):
            continue  # reported by the schema check
        framework = FRAMEWORK_KEYS.get(section, set())
        own = {k: v for k, v in body.items() if k in framework}
        try:
            entry = reg.get(name)
            resolved[section] = {"name": entry.name, **own,
                                 **entry.resolve({k: v for k, v in body.items() if k not in framework}, section)}
        except UnknownName as e:
            problems.append(f"{section}.name: {e}")
        except ConfigError as e:
            problems += e.problems
    return resolved, problems


def load(path: str | Path, overrides: list[str] = ()) -> Config:
    """Read an experiment (with its bases), apply `--set` overrides, and validate the result."""
    path = Path(path)
    data = read_with_bases(path)
    data.setdefault("name", path.stem)
    return validate(apply_overrides(data, list(overrides)))


def dump(config: Config) -> str:
    return yaml.safe_dump(config.to_dict(), sort_keys=False)
