"""A value the user typed is never dropped in silence, and every mistake shows at once, each as part of one line.

Through the command line (`dlx config`, `dlx train`, `dlx sweep`): a section switched to another entry keeps the
settings the new entry takes, whatever the order of the --set's, and a note names those dropped; a section left
out is its default entry before overrides apply; a key twice, or true/false where a number belongs, is an error;
an unknown name hides no other mistake; deep nesting, huge integers, keys that are not names and files that are not
UTF-8 end in one line and exit 2, never a traceback."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from dlx.cli import app
from dlx.config import validate
from dlx.errors import ConfigError, did_you_mean
from tests.conftest import EXPERIMENTS

DIGITS, RUNSUM, IRIS = (EXPERIMENTS / f for f in ("digits_cnn.yaml", "runsum_lstm.yaml", "iris_mlp.yaml"))
MINIMAL = "name: t\ndata: {name: digits}\nmodel: {name: cnn}\n"


def dlx(*args) -> object:
    return CliRunner().invoke(app, [str(a) for a in args])


def sets(*overrides: str) -> list[str]:
    return [a for o in overrides for a in ("--set", o)]


def resolved(result) -> dict:
    assert result.exit_code == 0, result.output
    return yaml.safe_load(result.stdout)


def notes(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("note: ")]


def refused(result, *messages: str) -> str:
    """Exit 2, one error line (after any notes) holding every message, no traceback."""
    assert result.exit_code == 2, result.output
    *before, line = result.stderr.splitlines()
    assert line.startswith("error: ") and all(n.startswith("note: ") for n in before), result.stderr
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit), result.output
    for message in messages:
        assert message in line, line
    return line


# (experiment, overrides, dotted key, the value it must end with)
SWITCHES = {
    "lr before the name": (DIGITS, ["optimizer.lr=0.05", "optimizer.name=sgd"], "optimizer.lr", 0.05),
    "lr after the name": (DIGITS, ["optimizer.name=sgd", "optimizer.lr=0.05"], "optimizer.lr", 0.05),
    "the experiment's lr": (DIGITS, ["optimizer.name=sgd"], "optimizer.lr", 0.002),
    "momentum before the name": (DIGITS, ["optimizer.momentum=0.9", "optimizer.name=sgd"], "optimizer.momentum", 0.9),
    "gru keeps output": (RUNSUM, ["model.name=gru"], "model.output", "steps"),
    "rnn keeps hidden": (RUNSUM, ["model.name=rnn"], "model.hidden", 64),
    "mlp keeps dropout": (DIGITS, ["model.name=mlp"], "model.dropout", 0.25),
    "split before the dataset": (DIGITS, ["data.split=[0.8, 0.1, 0.1]", "data.name=iris"], "data.split", [0.8, 0.1, 0.1]),
    "dlx's own data key": (EXPERIMENTS / "digits_augment.yaml", ["data.name=mnist"], "data.augment.shift", 1),
    "warmup before the schedule": (DIGITS, ["schedule.warmup=7", "schedule.name=constant"], "schedule.warmup", 7),
    "peak_factor kept by one_cycle": (DIGITS, ["schedule.name=one_cycle"], "schedule.peak_factor", 5.0),
    "no section: lr then name": (IRIS, ["schedule.warmup=3", "optimizer.lr=0.5", "optimizer.name=sgd"], "optimizer.lr", 0.5),
    "the last name wins": (DIGITS, ["optimizer.name=sgd", "optimizer.name=adam"], "optimizer.lr", 0.002),
}


def lookup(config: dict, dotted: str):
    for key in dotted.split("."):
        config = config[key]
    return config


@pytest.mark.parametrize(("experiment", "overrides", "key", "value"), SWITCHES.values(), ids=SWITCHES.keys())
def test_a_switched_entry_keeps_every_setting_it_takes_whatever_the_order(experiment, overrides, key, value):
    assert lookup(resolved(dlx("config", experiment, *sets(*overrides))), key) == value


@pytest.mark.parametrize(("experiment", "override", "note"), [
    (DIGITS, "model.name=mlp", "note: model.name mlp (was cnn): dropped model.width=32, model.depth=2, model.hidden=128"),
    (DIGITS, "schedule.name=cosine", "schedule.peak_factor=5"),
    (RUNSUM, "model.name=cnn", "model.output=steps"),
], ids=["cnn-to-mlp", "one_cycle-to-cosine", "lstm-to-cnn"])
def test_config_names_each_setting_the_new_entry_drops_in_one_line(experiment, override, note):
    result = dlx("config", experiment, "--set", override)
    assert [n for n in notes(result) if note in n], result.stderr
    assert len(notes(result)) == 1


def test_train_shows_the_note_before_anything_runs(tmp_path):
    result = dlx("train", DIGITS, "--set", "model.name=lenet5", "--runs-dir", tmp_path / "runs", "--quiet")
    refused(result, "too small")
    assert notes(result) == ["note: model.name lenet5 (was cnn): dropped model.width=32, model.depth=2, "
                             "model.hidden=128, model.dropout=0.25, which lenet5 does not take"]
    assert not (tmp_path / "runs").exists()


def test_no_note_when_nothing_is_dropped():
    result = dlx("config", RUNSUM, "--set", "model.name=gru")
    assert result.exit_code == 0 and not notes(result)


def test_a_set_the_new_entry_does_not_take_is_an_error_not_a_note():
    refused(dlx("config", DIGITS, *sets("model.width=3", "model.name=mlp")), "model.width: unknown setting for 'mlp'")


def test_a_base_child_naming_another_entry_keeps_what_it_takes(tmp_path):
    (tmp_path / "common.yaml").write_text("data: {name: digits}\nmodel: {name: cnn, width: 8, dropout: 0.3}\n"
                                          "optimizer: {name: adam, lr: 0.02}\n")
    (tmp_path / "child.yaml").write_text("base: common.yaml\nmodel: {name: mlp, sizes: '16'}\noptimizer: {name: sgd}\n")
    result = dlx("config", tmp_path / "child.yaml")
    config = resolved(result)
    assert config["model"]["dropout"] == 0.3 and config["model"]["sizes"] == "16" and config["optimizer"]["lr"] == 0.02
    assert notes(result) == ["note: model.name mlp (was cnn): dropped model.width=8, which mlp does not take"]


def test_a_base_childs_own_setting_the_entry_does_not_take_is_an_error(tmp_path):
    (tmp_path / "common.yaml").write_text("data: {name: digits}\nmodel: {name: cnn}\n")
    (tmp_path / "child.yaml").write_text("base: common.yaml\nmodel: {name: mlp, width: 3}\n")
    refused(dlx("config", tmp_path / "child.yaml"), "model.width: unknown setting for 'mlp'")


# a section the experiment leaves out (or that names no entry) is its default entry before overrides apply
DEFAULTS = {
    "loss.l1": (IRIS, "", ["loss.l1=0.001"], "loss", {"name": "cross_entropy", "l1": 0.001}),
    "loss.label_smoothing": (IRIS, "", ["loss.label_smoothing=0.1"], "loss", {"name": "cross_entropy", "label_smoothing": 0.1}),
    "optimizer.lr": (EXPERIMENTS / "digits_augment.yaml", "", ["optimizer.lr=0.1"], "optimizer", {"name": "adam", "lr": 0.1}),
    "schedule.warmup": (IRIS, "", ["schedule.warmup=5"], "schedule", {"name": "constant", "warmup": 5}),
    "a nameless section in the file": (None, "optimizer: {lr: 0.3}\n", [], "optimizer", {"name": "adam", "lr": 0.3}),
    "a nameless section switched": (None, "optimizer: {lr: 0.3, betas: [0.8, 0.9]}\n", ["optimizer.name=sgd"],
                                    "optimizer", {"name": "sgd", "lr": 0.3}),
}


@pytest.mark.parametrize(("experiment", "extra", "overrides", "section", "expected"), DEFAULTS.values(), ids=DEFAULTS.keys())
def test_defaults_fill_a_section_then_overrides_apply(tmp_path, experiment, extra, overrides, section, expected):
    if experiment is None:
        experiment = tmp_path / "exp.yaml"
        experiment.write_text(MINIMAL + extra)
    got = resolved(dlx("config", experiment, *sets(*overrides)))[section]
    assert {k: got[k] for k in expected} == expected


DUPLICATES = {
    "top level": ("name: t\nseed: 1\ndata: {name: digits}\nmodel: {name: cnn}\nseed: 2\n", "'seed' appears twice", "line 5"),
    "a section": ("name: t\ndata: {name: digits}\nmodel:\n  name: cnn\n  width: 8\n  width: 16\n", "'width' appears twice",
                  "line 6"),
    "a flow mapping": ("name: t\ndata: {name: digits, split: [0.6, 0.2, 0.2], split: [1, 0, 0]}\nmodel: {name: cnn}\n",
                       "'split' appears twice", "line 2"),
    "a section twice": ("name: t\ndata: {name: digits}\nmodel: {name: cnn}\ntrain: {epochs: 1}\ntrain: {batch_size: 2}\n",
                        "'train' appears twice", "(also at line 4)"),
    "nested": ("name: t\ndata: {name: digits, augment: {shift: 1, shift: 2}}\nmodel: {name: cnn}\n", "'shift' appears twice",
               "line 2"),
}


@pytest.mark.parametrize(("text", "message", "where"), DUPLICATES.values(), ids=DUPLICATES.keys())
def test_a_key_twice_is_an_error_naming_the_key_and_line(tmp_path, text, message, where):
    (tmp_path / "exp.yaml").write_text(text)
    refused(dlx("config", tmp_path / "exp.yaml"), message, where)


def test_a_key_twice_in_a_base_or_a_set_value_is_an_error_too(tmp_path):
    (tmp_path / "common.yaml").write_text(MINIMAL + "seed: 1\nseed: 2\n")
    (tmp_path / "child.yaml").write_text("base: common.yaml\n")
    refused(dlx("config", tmp_path / "child.yaml"), "common.yaml: line 5: the key 'seed' appears twice")
    refused(dlx("config", DIGITS, "--set", "data.augment={shift: 1, shift: 2}"), "the key 'shift' appears twice")


BOOLEANS = ["train.epochs", "train.batch_size", "seed", "train.patience", "train.log_every", "train.min_delta",
            "train.grad_clip", "data.split_seed", "data.augment.shift", "data.augment.rotate", "loss.l1", "loss.l2",
            "schedule.warmup", "samples.length", "samples.every", "model.width", "model.hidden", "optimizer.lr",
            "schedule.peak_factor"]


@pytest.mark.parametrize("key", BOOLEANS)
@pytest.mark.parametrize("how", ["set", "file"])
def test_true_where_a_number_belongs_is_an_error(tmp_path, key, how):
    if how == "set":
        result = dlx("config", DIGITS, "--set", f"{key}=true")
    else:
        data = yaml.safe_load(DIGITS.read_text())
        *parents, leaf = key.split(".")
        node = data
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = True
        (tmp_path / "exp.yaml").write_text(yaml.safe_dump(data))
        result = dlx("config", tmp_path / "exp.yaml")
    refused(result, f"{key}: expected a number, got true")


@pytest.mark.parametrize("override", ["data.split=[true, 0, 0]", "data.split=[0.6, 0.2, false]"])
def test_a_boolean_inside_a_list_of_numbers_is_an_error(override):
    refused(dlx("config", DIGITS, "--set", override), "expected a number, got")


@pytest.mark.parametrize("override", ["train.compile=true", "data.standardize=false", "data.augment.hflip=true",
                                      "model.batch_norm=true", "optimizer.nesterov=true"])
def test_a_boolean_where_one_belongs_is_taken(override):
    experiment = EXPERIMENTS / "digits_mlp.yaml" if override.startswith("model.") else DIGITS
    extra = ["optimizer.name=sgd", "optimizer.momentum=0.9"] if override.startswith("optimizer.") else []
    key, value = override.split("=")
    assert lookup(resolved(dlx("config", experiment, *sets(*extra, override))), key) is (value == "true")


def test_everything_wrong_with_an_unknown_dataset_shows_at_once():
    line = refused(dlx("config", DIGITS, *sets("data.name=digts", "data.splitt=[1, 0, 0]", "data.split=[0.5]",
                                               "train.epochs=0")),
                   "data.name: unknown dataset 'digts'", "data.splitt: unknown key (did you mean 'split'",
                   "data.split.1: missing", "train.epochs: input should be greater than or equal to 1")
    assert "choose from: )" not in line


def test_an_unknown_optimizer_hides_no_bad_lr():
    refused(dlx("config", DIGITS, *sets("optimizer.name=sgdd", "optimizer.lr=-1", "train.batch_size=0")),
            "optimizer.name: unknown optimizer 'sgdd' (did you mean 'sgd'?)", "optimizer.lr: input should be greater than 0",
            "train.batch_size: input should be greater than or equal to 1")


def test_an_unknown_model_does_not_flag_the_old_models_settings():
    line = refused(dlx("config", DIGITS, "--set", "model.name=mpl"), "model.name: unknown model 'mpl' (did you mean 'mlp'?)")
    assert line.count(";") == 0, line  # width, depth, hidden were the cnn's: no noise about them


@pytest.mark.parametrize("override", ["data.splitt=[1, 0, 0]", "data.foo=1", "data.name=digits"])
def test_never_an_empty_choice_list(override):
    result = dlx("config", DIGITS, "--set", override, "--set", "data.bar=2")
    assert "choose from: )" not in result.output and "()" not in result.output
    refused(result, "data.bar: unknown setting for 'digits'")


def test_did_you_mean_among_nothing_says_nothing():
    assert did_you_mean("x", []) == ""


def sweep_file(tmp_path: Path, **changes) -> Path:
    shutil.copy(DIGITS, tmp_path / "digits_cnn.yaml")
    spec = {"experiment": "digits_cnn.yaml", "method": "random", "metric": "val/accuracy", "trials": 2, "epochs": 1,
            "space": {"optimizer.lr": {"low": 0.001, "high": 0.03, "log": True}}, **changes}
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return tmp_path / "sweep.yaml"


SWEEP_MISTAKES = {
    "four at once": ({"methd": "tpe", "metric": "val/acuracy",
                      "space": {"optimizer.lrr": [0.1, 0.01], "model.dropout": {"low": 0.5, "high": 0.1}}},
                     ["methd: unknown key (did you mean 'method'?)", "space.model.dropout: empty or inverted range",
                      "optimizer.lrr: unknown setting for 'adam'", "runs never log 'val/acuracy'"]),
    "file, space and experiment": ({"pruner": "asha", "experiment": "nope.yaml", "space": {"x": {"low": 1, "hgh": 2}}},
                                   ["pruner: input should be", "space.x.hgh: unknown key", "experiment: no such file"]),
    "a set that cannot be read, and a config value": ({"set": ["train.epochs"], "space": {"model.dropout": [0.1, 1.5]}},
                                                      ["--set 'train.epochs'", "model.dropout: input should be less"]),
    "a boolean range and a grid": ({"method": "grid", "trials": True, "space": {"train.epochs": {"low": True, "high": 3}}},
                                   ["trials: expected a number, got true", "space.train.epochs.low: expected a number"]),
    "grid over a range, and an unknown section": ({"method": "grid", "space": {"optimizer.lr": {"low": 0.1, "high": 1.0},
                                                                               "modle.width": [8]}},
                                                  ["method grid needs discrete values", "modle"]),
}


@pytest.mark.parametrize(("changes", "messages"), SWEEP_MISTAKES.values(), ids=SWEEP_MISTAKES.keys())
def test_a_sweep_files_mistakes_show_in_one_run(tmp_path, changes, messages):
    refused(dlx("sweep", sweep_file(tmp_path, **changes), "--runs-dir", tmp_path / "runs"), *messages)
    assert not (tmp_path / "runs").exists()


DEEP = "[" * 5000 + "]" * 5000
HUGE = "9" * 5000
HOSTILE_FILES = {
    "deep list": (MINIMAL + f"seed: {DEEP}\n", "nested more than 32 levels deep"),
    "deep mapping": (MINIMAL + "x: " + "{a: " * 2000 + "1" + "}" * 2000 + "\n", "nested more than 32 levels deep"),
    "deep block": (MINIMAL + "".join(f"{'  ' * i}a{i}:\n" for i in range(200)) + "  " * 200 + "b: 1\n", "nested more"),
    "huge integer": (MINIMAL + f"seed: {HUGE}\n", "line 4: the number 999999999999... (5000 characters) is too large"),
    "huge hex integer": (f"name: t\ndata: {{name: digits}}\nmodel: {{name: cnn, width: 0x{'f' * 400}}}\n", "too large for any"),
    "huge negative integer": (MINIMAL + f"train: {{epochs: -{HUGE}}}\n", "too large"),
    "integer key in data": ("name: t\ndata: {name: digits, 1: 2}\nmodel: {name: cnn}\n", "line 2: the key 1 is not a name"),
    "integer key in model": ("name: t\ndata: {name: digits}\nmodel: {name: cnn, 7: x}\n", "the key 7 is not a name"),
    "integer key in train": (MINIMAL + "train: {1: 2}\n", "the key 1 is not a name"),
    "integer key at the top": ("1: 2\n" + MINIMAL, "line 1: the key 1 is not a name"),
    "boolean key": (MINIMAL + "train: {yes: 2}\n", "the key yes is not a name (quote it"),
    "null key": (MINIMAL + "train: {~: 2}\n", "the key ~ is not a name"),
    "list key": (MINIMAL + "? [a, b]\n: 1\n", "the key a sequence is not a name"),
    "float key": ("name: t\ndata: {name: digits}\nmodel: {name: cnn, 1.5: 2}\n", "the key 1.5 is not a name"),
    "latin-1": (("name: caf\xe9\n" + MINIMAL[8:]).encode("latin-1"), "not UTF-8 text (byte 0xe9"),
    "utf-16": (MINIMAL.encode("utf-16"), "not UTF-8 text"),
    "a NUL character": ("name: t\x00\n", "character #x0000"),
}


@pytest.mark.parametrize(("text", "message"), HOSTILE_FILES.values(), ids=HOSTILE_FILES.keys())
def test_a_hostile_config_file_is_one_line_not_a_traceback(tmp_path, text, message):
    (tmp_path / "exp.yaml").write_bytes(text if isinstance(text, bytes) else text.encode())
    refused(dlx("config", tmp_path / "exp.yaml"), message)


HOSTILE_SETS = {
    "deep list": (f"seed={DEEP}", "nested more than 32 levels deep"),
    "deep list in a list": (f"data.split={DEEP}", "nested more than 32 levels deep"),
    "huge integer": (f"seed={HUGE}", "too large for any setting"),
    "huge integer in a list": (f"data.split=[{HUGE}, 0, 0]", "too large for any setting"),
    "integer key": ("data.augment={1: 2}", "the key 1 is not a name"),
    "a mapping twice": ("train={epochs: 1, epochs: 2}", "the key 'epochs' appears twice"),
    "a key not printable": ("model.caf\udce9=1", "not printable"),
}


@pytest.mark.parametrize(("override", "message"), HOSTILE_SETS.values(), ids=HOSTILE_SETS.keys())
def test_a_hostile_set_is_one_line_not_a_traceback(override, message):
    line = refused(dlx("config", DIGITS, "--set", override), message)
    assert len(line) < 400  # a value of thousands of characters is not repeated whole


def test_a_base_or_sweep_file_that_is_not_utf8_is_one_line(tmp_path):
    (tmp_path / "common.yaml").write_bytes(b"seed: caf\xe9\n")
    (tmp_path / "child.yaml").write_text("base: common.yaml\n" + MINIMAL)
    refused(dlx("config", tmp_path / "child.yaml"), "common.yaml: not UTF-8 text")
    (tmp_path / "sweep.yaml").write_bytes(b"experiment: caf\xe9.yaml\n")
    refused(dlx("sweep", tmp_path / "sweep.yaml", "--runs-dir", tmp_path / "runs"), "sweep.yaml: not UTF-8 text")


@pytest.mark.parametrize("section", ["data", "model", "optimizer", "loss", "schedule", "train"])
def test_integer_keys_given_from_python_are_problems_not_type_errors(section):
    data = {"name": "t", "data": {"name": "digits"}, "model": {"name": "cnn"}}
    data[section] = {**data.get(section, {}), 1: 2}
    with pytest.raises(ConfigError, match=rf"{section}\.1: "):
        validate(data)
