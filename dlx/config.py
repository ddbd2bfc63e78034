"""From YAML to a validated, typed config: load, inherit (`base:`), override (`--set`), validate.

Every problem is collected and reported at once with its dotted path, before anything runs or is
written. Component sections (data, model, loss, optimizer, schedule) name a registry entry and carry
its settings, which are checked against the entry's signature and completed with its defaults, so
the config saved with a run holds every value that shaped it.
"""
from __future__ import annotations

import copy
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import pydantic
import yaml
from pydantic import BaseModel, ConfigDict, Field

from dlx import registry, schema
from dlx.data.settings import Augment, Bag, Fold
from dlx.errors import ConfigError, DlxError, UnknownName, closest, did_you_mean

RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def plain_name(text: str, fallback: str) -> str:
    """`text` made a name that RUN_NAME accepts, for a file or folder named after an input: other characters become
    '_', leading dots, dashes and underscores go ('..' cannot climb out of a folder, '-x' is no option); `fallback`
    if nothing is left."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", text).lstrip("._-")[:128]
    return name if RUN_NAME.match(name) else fallback


class Section(schema.Schema):
    """One of dlx's own sections."""


class Component(schema.Schema):
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
    resize: Annotated[int, Field(ge=1, le=4096)] | None = None  # images scaled to this many pixels a side (bilinear)
    augment: Augment = Augment()  # random shifts, flips, crops, rotations, colour jitter of training images
    # the seed of the split alone (None: the run's seed): committee members share it and differ in `seed`
    split_seed: Annotated[int, Field(ge=0, lt=2**63)] | None = None
    fold: Fold | None = None  # k-fold cross-validation, set by `dlx train --folds K`: {k: 5, index: 2}
    bag: Bag | None = None  # a bootstrap resample of the train split, set by `dlx train --bagging K`: {k: 5, index: 2}


class ModelSection(Component):
    # an embedding head of this width on any model (its output layer, L2-normalised), for metric learning
    embedding_head: Annotated[int, Field(ge=1, le=65536)] | None = None
    # a trained run whose token embedding (word2vec's word vectors, a language model's) starts this model's; the
    # vocabulary and the width must match (dlx/run/pretrained.py)
    embedding_from: str | None = None
    embedding_freeze: bool = False  # keep those vectors as they are (else they are fine-tuned)


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
    judge: str | None = None  # a classifier's run folder that judges a generative model's samples (dlx/judge.py)
    judge_samples: Annotated[int, Field(ge=2, le=100_000)] = 1000  # samples the judge labels at each evaluation


class SamplesSection(Section):
    """Samples while a model trains, to watch them improve: a language model's text (the course shows text improving
    as training goes on), a generative model's image grid from one fixed batch of noise."""

    every: Annotated[int, Field(ge=1)] | None = None  # steps between samples in TensorBoard (text or images); None: none
    grid: Annotated[int, Field(ge=1, le=1024)] = 64  # images in a generative model's grid
    length: Annotated[int, Field(ge=1, le=100_000)] = 200  # new characters per sample
    prompt: str | None = None  # None: a new line, or the vocabulary's first character for text without lines
    temperature: Annotated[float, Field(ge=0.0)] = 0.8  # 0: greedy
    terminal: bool = False  # also print each sample to the terminal


class Config(Section):
    name: str
    seed: Annotated[int, Field(ge=0, lt=2**63)] = 0
    data: DataSection
    model: ModelSection
    objective: Component = Component(name="supervised")  # how a batch becomes losses (`dlx list objectives`)
    loss: LossSection = LossSection(name="cross_entropy")
    optimizer: Component = Component(name="adam")  # every parameter group's, unless `optimizers` names the group
    schedule: ScheduleSection = ScheduleSection(name="constant")  # likewise, unless `schedules` names the group
    # per parameter group of the objective, e.g. {generator: {name: adam, lr: 0.0002}, discriminator: {...}}
    optimizers: dict[str, Component] = {}
    schedules: dict[str, ScheduleSection] = {}
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

    def optimizer_for(self, group: str) -> Component:
        return self.optimizers.get(group, self.optimizer)

    def schedule_for(self, group: str) -> ScheduleSection:
        return self.schedules.get(group, self.schedule)


COMPONENTS = {"data": registry.datasets, "model": registry.models, "objective": registry.objectives,
              "loss": registry.losses, "optimizer": registry.optimizers, "schedule": registry.schedules}
GROUP_SECTIONS = {"optimizers": "optimizer", "schedules": "schedule"}  # per-group sections, each like its singular
# keys of a component section that dlx itself reads rather than passing them to the entry
FRAMEWORK_KEYS = {section: set(cls.model_fields) - {"name"}
                  for section, cls in (("data", DataSection), ("model", ModelSection), ("loss", LossSection),
                                       ("schedule", ScheduleSection))}
# the entry of a section the experiment leaves out, or names no entry in: its settings are that entry's
DEFAULT_ENTRIES = {section: field.default.name for section, field in Config.model_fields.items()
                   if section in COMPONENTS and not field.is_required()}
MAX_DEPTH = 32  # a config is a few levels deep; nesting far deeper would only exhaust Python's stack
MAX_INT_BITS = 1024  # beyond any float: no setting takes such a number, and Python cannot print ones of 4300 digits

Note = Callable[[str], None]  # told one line for each value dlx does not use as given


def unheard(text: str) -> None:
    """The note of a caller that shows none."""


class _Refused(yaml.MarkedYAMLError):
    """What YAML allows but a config may not hold."""


class _ConfigLoader(yaml.SafeLoader):
    """YAML as a config holds it. Refused: anchors and aliases (a config needs none, and nested aliases can
    explode in size), a key twice in one mapping (the last would win in silence), keys that are not names
    (`1:`, `yes:`), nesting deeper than MAX_DEPTH and integers too large for any setting."""

    def __init__(self, stream):
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            raise _Refused(problem=f"YAML aliases (*{event.anchor}) are not supported in dlx configs",
                           problem_mark=event.start_mark)
        if self._depth >= MAX_DEPTH:
            raise _Refused(problem=f"nested more than {MAX_DEPTH} levels deep", problem_mark=event.start_mark)
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node, deep=False):
        lines: dict[str, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                shown = key_node.value if isinstance(key_node, yaml.ScalarNode) else f"a {key_node.id}"
                raise _Refused(problem=f"the key {shown} is not a name (quote it if it is one: '{shown}')",
                               problem_mark=key_node.start_mark)
            if key in lines:
                raise _Refused(problem=f"the key '{key}' appears twice (also at line {lines[key]})",
                               problem_mark=key_node.start_mark)
            lines[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep)

    def construct_yaml_int(self, node):
        try:
            value = super().construct_yaml_int(node)
        except ValueError:  # more digits than Python converts
            value = None
        if value is None or value.bit_length() > MAX_INT_BITS:
            raise _Refused(problem=f"the number {node.value[:12]}... ({len(node.value)} characters) is too large for "
                                   f"any setting", problem_mark=node.start_mark)
        return value


_ConfigLoader.add_constructor("tag:yaml.org,2002:int", _ConfigLoader.construct_yaml_int)


def _yaml_problem(error: yaml.YAMLError, text: str) -> str:
    """A YAML error as one line naming the line it is at."""
    if isinstance(error, _Refused):
        return f"line {error.problem_mark.line + 1}: {error.problem}"
    if isinstance(error, yaml.MarkedYAMLError):
        mark = error.problem_mark or error.context_mark
        return f"invalid YAML at line {mark.line + 1}, column {mark.column + 1}: {error.problem or error.context}"
    if isinstance(error, yaml.reader.ReaderError):
        return (f"invalid YAML at line {text.count(chr(10), 0, error.position) + 1}: character "
                f"#x{error.character:04x}: {error.reason}")
    return f"invalid YAML: {' '.join(str(error).split())}"


def read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise DlxError(f"{path}: no such config file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise DlxError(f"{path}: not UTF-8 text (byte 0x{e.object[e.start]:02x} at position {e.start}); "
                       "save it as UTF-8") from None
    try:
        data = yaml.load(text, Loader=_ConfigLoader)
    except yaml.YAMLError as e:
        raise DlxError(f"{path}: {_yaml_problem(e, text)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise DlxError(f"{path}: a config is a mapping of sections (name, data, model, ...), not a {type(data).__name__}")
    return data


def render(value: Any) -> str:
    """A value as YAML on one line that reads back as the same value (1e-05 stays a float, '64' a string)."""
    return yaml.safe_dump(value, default_flow_style=True, width=math.inf).removesuffix("\n...\n").strip()


def _entry_name(section: str, body: dict[str, Any]) -> Any:
    return body.get("name", DEFAULT_ENTRIES.get(section))


def _switch_entry(section: str, body: dict[str, Any], name: Any, note: Note) -> dict[str, Any]:
    """The component section `body` names the entry `name` instead: it keeps dlx's own keys and every
    setting the new entry takes; a note names the settings dropped because the new entry has no such one.
    An unknown name keeps them all, for validation to report it with its did-you-mean."""
    reg, old = COMPONENTS[section], _entry_name(section, body)
    if not isinstance(name, str) or name not in reg or (isinstance(old, str) and old in reg and reg.get(old) is reg.get(name)):
        return {**body, "name": name}
    entry, own = reg.get(name), FRAMEWORK_KEYS.get(section, set())
    kept = {k: v for k, v in body.items() if k in own or entry.takes(k)}
    dropped = [f"{section}.{k}={render(v)}" for k, v in body.items() if k != "name" and k not in kept]
    if dropped:
        note(f"{section}.name {name} (was {old}): dropped {', '.join(dropped)}, which {name} does not take")
    return {**kept, "name": name}


def _deep_merge(base: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in child.items():
        old = merged.get(key)
        merged[key] = _deep_merge(old, value) if isinstance(old, dict) and isinstance(value, dict) else copy.deepcopy(value)
    return merged


def merge(base: dict[str, Any], child: dict[str, Any], note: Note = unheard) -> dict[str, Any]:
    """Deep merge, the child winning; a component section in which the child names another registry entry
    keeps only the base's settings that entry takes."""
    merged = copy.deepcopy(base)
    for key, value in child.items():
        old = merged.get(key)
        if isinstance(old, dict) and isinstance(value, dict):
            if key in COMPONENTS and "name" in value:
                old = _switch_entry(key, old, value["name"], note)
            merged[key] = _deep_merge(old, value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def read_with_bases(path: Path, seen: tuple[Path, ...] = (), note: Note = unheard) -> dict[str, Any]:
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
        merged = merge(merged, read_with_bases(path.parent / base, (*seen, path), note), note)
    return merge(merged, data, note)


def _shown(text: str) -> str:
    return text if len(text) <= 80 else f"{text[:60]}...({len(text)} characters)"


def parse_override(text: str, option: str = "--set") -> tuple[list[str], Any]:
    """'optimizer.lr=0.01' -> (['optimizer', 'lr'], 0.01); values are YAML scalars or flow lists. `option` is the
    one the user typed it with, named in the error."""
    key, sep, raw = text.partition("=")
    keys = key.strip().split(".")
    if not sep or not all(k.strip() for k in keys):
        raise DlxError(f"{option} '{_shown(text)}': expected KEY=VALUE with a dotted key, "
                       f"e.g. {option} optimizer.lr=0.01")
    if not key.isprintable():
        raise DlxError(f"{option} '{_shown(text)}': the key holds characters that are not printable text")
    try:
        value = yaml.load(raw, Loader=_ConfigLoader) if raw.strip() else None
    except _Refused as e:
        raise DlxError(f"{option} '{_shown(text)}': {e.problem}") from None
    except yaml.YAMLError:
        raise DlxError(f"{option} '{_shown(text)}': '{_shown(raw)}' is not a valid value (a number, word, true/false, "
                       "null or [a, b])") from None
    return [k.strip() for k in keys], value


def _names_entry(keys: list[str]) -> bool:
    return len(keys) == 2 and keys[0] in COMPONENTS and keys[1] == "name"


def apply_overrides(data: dict[str, Any], overrides: list[str], note: Note = unheard) -> dict[str, Any]:
    """`--set` overrides applied to a raw config. Entry names go first, whatever the order given, so
    `--set optimizer.lr=0.05 --set optimizer.name=sgd` ends with lr 0.05."""
    data = copy.deepcopy(data)
    parsed = [(text, *parse_override(text)) for text in overrides]
    for text, keys, value in sorted(parsed, key=lambda override: not _names_entry(override[1])):
        if _names_entry(keys) and isinstance(data.get(keys[0]), dict):
            data[keys[0]] = _switch_entry(keys[0], data[keys[0]], value, note)
            continue
        node = data
        for depth, key in enumerate(keys[:-1]):
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise DlxError(f"--set '{_shown(text)}': '{'.'.join(keys[:depth + 1])}' is a value, not a section")
        node[keys[-1]] = value
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


def _with_default_entries(data: dict[str, Any]) -> dict[str, Any]:
    """A section that names no entry has the default one: `--set loss.l1=0.001` needs no loss.name."""
    return {key: {"name": DEFAULT_ENTRIES[key], **value}
            if key in DEFAULT_ENTRIES and isinstance(value, dict) and "name" not in value else value
            for key, value in data.items()}


def validate(data: dict[str, Any]) -> Config:
    """A raw mapping -> a Config whose every component is a known entry with complete, valid settings."""
    data = _with_default_entries(data)
    try:
        config = Config.model_validate(data)
    except pydantic.ValidationError as e:
        problems = schema.problems(e.errors(), known_keys=_known_keys)
        # the component checks still run on whatever sections are well formed, so every problem shows at once
        problems += _component_problems({k: v for k, v in data.items() if k in COMPONENTS and isinstance(v, dict)})[1]
        raise ConfigError(sorted(set(problems), key=problems.index)) from None
    raw = {k: getattr(config, k).model_dump() for k in COMPONENTS}
    resolved, problems = _component_problems(raw)
    groups, group_problems = _group_problems(config, resolved.get("objective"))
    problems += group_problems
    for name in config.eval.metrics or []:
        if name not in registry.metrics:
            problems.append(f"eval.metrics: {UnknownName('metric', name, registry.metrics.names())}")
    if problems:
        raise ConfigError(problems)
    update = {k: type(getattr(config, k)).model_validate(v) for k, v in resolved.items()}
    return config.model_copy(update={**update, **groups})


def _default_loss(loss: LossSection) -> bool:
    """Whether the loss section is the default one, its settings filled in or not (as a saved config has them)."""
    default = Config.model_fields["loss"].default.name
    defaults = registry.losses.get(default).defaults()
    return (loss.name == default and not loss.l1 and not loss.l2
            and all(k in defaults and defaults[k] == v for k, v in loss.settings.items()))


def _group_problems(config: Config, objective: dict[str, Any] | None) -> tuple[dict[str, Any], list[str]]:
    """`optimizers` and `schedules`: one section per parameter group the objective trains, each a registry entry."""
    if objective is None:
        return {}, []  # an unknown objective is reported already
    entry = registry.objectives.get(objective["name"])
    resolved: dict[str, Any] = {}
    problems = []
    model = registry.models.get(config.model.name) if config.model.name in registry.models else None
    if model is not None:
        wanted = model.meta.get("objective", "supervised")
        wanted = (wanted,) if isinstance(wanted, str) else wanted  # a model may serve several objectives
        serves = "supervised" if entry.obj.embeds else entry.name  # an embedding: a supervised model with a head
        if serves not in wanted:
            problems.append(f"objective.name: model '{model.name}' is trained with objective "
                            f"'{' or '.join(wanted)}', not '{entry.name}' (set objective.name={wanted[0]})")
        elif entry.obj.embeds and config.model.embedding_head is None:
            problems.append(f"model.embedding_head: objective '{entry.name}' trains an embedding; give the model its "
                            f"width, e.g. model.embedding_head=64")
        elif not entry.obj.embeds and config.model.embedding_head is not None:
            problems.append(f"model.embedding_head: an embedding is trained by objective triplet or siamese, not "
                            f"'{entry.name}' (set objective.name=triplet, or remove model.embedding_head)")
    if not entry.obj.uses_loss and not _default_loss(config.loss):
        problems.append(f"loss: objective '{entry.name}' defines its own loss; remove the loss section")
    for plural, singular in GROUP_SECTIONS.items():
        sections = getattr(config, plural)
        for group in sections:
            if group not in entry.obj.groups:
                problems.append(f"{plural}.{group}: objective '{entry.name}' has no parameter group '{group}'"
                                f"{did_you_mean(group, entry.obj.groups)}")
        checked, more = _component_problems({f"{plural}.{g}": s.model_dump() for g, s in sections.items()},
                                            {f"{plural}.{g}": singular for g in sections})
        problems += more
        cls = type(getattr(config, singular))
        resolved[plural] = {g: cls.model_validate(checked[f"{plural}.{g}"]) for g in sections
                            if f"{plural}.{g}" in checked}
    return resolved, problems


def _component_problems(raw: dict[str, dict[str, Any]], kinds: dict[str, str] | None = None,
                        ) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Each section's entry looked up and its settings resolved; `kinds` maps a section to the kind of component it
    holds when that is not its own name (optimizers.generator holds an optimizer)."""
    resolved, problems = {}, []
    for section in (raw if kinds else COMPONENTS):
        kind = (kinds or {}).get(section, section)
        reg = COMPONENTS[kind]
        body = dict(raw.get(section) or {})
        name = body.pop("name", None)
        if not isinstance(name, str):
            continue  # reported by the schema check
        framework = FRAMEWORK_KEYS.get(kind, set())
        own = {k: v for k, v in body.items() if k in framework}
        settings = {k: v for k, v in body.items() if k not in framework}
        try:
            entry = reg.get(name)
        except UnknownName as e:
            problems += [f"{section}.name: {e}", *_nearest_entry_problems(section, kind, e.closest, settings)]
            continue
        try:
            resolved[section] = {"name": entry.name, **own, **entry.resolve(settings, section, framework)}
        except ConfigError as e:
            problems += e.problems
    return resolved, problems


def _nearest_entry_problems(section: str, kind: str, nearest: list[str], settings: dict[str, Any]) -> list[str]:
    """An unknown entry name hides no other mistake: the settings the likeliest meant entry takes are
    checked against it (the others may belong to the entry meant), and a near miss of dlx's own keys
    (data.splitt) is named. `kind` is the section's kind of component (optimizers.generator: optimizer)."""
    guess = COMPONENTS[kind].get(nearest[0]) if nearest else None
    own = FRAMEWORK_KEYS.get(kind, set())
    problems = [f"{section}.{key}: unknown key{did_you_mean(key, own)}" for key in settings
                if closest(key, own) and not (guess and guess.takes(key))]
    if guess is not None:
        try:
            guess.resolve({k: v for k, v in settings.items() if guess.takes(k)}, section, partial=True)
        except ConfigError as e:
            problems += e.problems
    return problems


def load(path: str | Path, overrides: list[str] = (), note: Note = unheard) -> Config:
    """Read an experiment (with its bases), apply `--set` overrides, and validate the result. `note` is
    told, one line each, of settings dropped because the entry they were set for was replaced."""
    path = Path(path)
    data = read_with_bases(path, note=note)
    data.setdefault("name", path.stem)
    return validate(apply_overrides(data, list(overrides), note))


def flatten(mapping: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'optimizer': {'lr': 0.1}} -> {'optimizer.lr': 0.1}; lists stay whole values."""
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def dump(config: Config) -> str:
    return yaml.safe_dump(config.to_dict(), sort_keys=False)
