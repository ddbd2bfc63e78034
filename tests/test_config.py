from pathlib import Path

import pytest

from dlx.config import apply_overrides, dump, load, parse_override, validate
from dlx.errors import ConfigError, DlxError

MINIMAL = {"name": "t", "data": {"name": "digits"}, "model": {"name": "cnn"}}


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_defaults_are_filled_in_and_the_dump_reloads_identically(tmp_path):
    config = validate(MINIMAL)
    assert config.model.settings["width"] == 32 and config.optimizer.name == "adam"
    assert config.optimizer.settings["lr"] == 1e-3
    again = load(write(tmp_path / "c.yaml", dump(config)))
    assert again == config


@pytest.mark.parametrize("text, keys, value", [
    ("optimizer.lr=0.01", ["optimizer", "lr"], 0.01),
    ("train.epochs=5", ["train", "epochs"], 5),
    ("data.split=[0.8, 0.1, 0.1]", ["data", "split"], [0.8, 0.1, 0.1]),
    ("model.activation=tanh", ["model", "activation"], "tanh"),
    ("train.patience=null", ["train", "patience"], None),
    ("train.grad_clip=", ["train", "grad_clip"], None),
])
def test_override_values_are_yaml_scalars_or_lists(text, keys, value):
    assert parse_override(text) == (keys, value)


@pytest.mark.parametrize("text", ["optimizer.lr", "=3", "a..b=1", "x=[1,"])
def test_bad_override_syntax_is_an_error(text):
    with pytest.raises(DlxError, match="--set"):
        parse_override(text)


def test_changing_an_entry_name_drops_the_old_entrys_settings():
    data = apply_overrides({**MINIMAL, "model": {"name": "cnn", "width": 8}}, ["model.name=mlp", "model.sizes=16"])
    assert data["model"] == {"name": "mlp", "sizes": 16}
    assert validate(data).model.settings["sizes"] == 16


def test_overriding_inside_a_value_is_an_error():
    with pytest.raises(DlxError, match="'seed' is a value, not a section"):
        apply_overrides({**MINIMAL, "seed": 1}, ["seed.x=1"])


def test_base_inheritance_merges_deeply_and_children_win(tmp_path):
    write(tmp_path / "common.yaml", "seed: 7\ndata: {name: digits}\nmodel: {name: cnn, width: 8, depth: 1}\n"
                                     "train: {epochs: 3, batch_size: 32}\n")
    child = write(tmp_path / "child.yaml", "base: common.yaml\nmodel: {width: 16}\ntrain: {epochs: 5}\n")
    config = load(child)
    assert config.name == "child" and config.seed == 7
    assert (config.model.settings["width"], config.model.settings["depth"]) == (16, 1)
    assert (config.train.epochs, config.train.batch_size) == (5, 32)


def test_a_child_naming_another_entry_replaces_the_base_section(tmp_path):
    write(tmp_path / "common.yaml", "data: {name: digits}\nmodel: {name: cnn, width: 8}\n")
    config = load(write(tmp_path / "child.yaml", "base: common.yaml\nmodel: {name: mlp}\n"))
    assert config.model.name == "mlp" and "width" not in config.model.settings


def test_inheritance_loops_are_reported(tmp_path):
    write(tmp_path / "a.yaml", "base: b.yaml\n")
    write(tmp_path / "b.yaml", "base: a.yaml\n")
    with pytest.raises(DlxError, match="loops"):
        load(tmp_path / "a.yaml")


def test_every_problem_is_reported_at_once_with_its_path():
    with pytest.raises(ConfigError) as e:
        validate({"name": "t", "data": {"name": "digts"}, "model": {"name": "cnn", "widht": 3},
                  "optimizer": {"name": "sgd", "lr": -1}, "train": {"epochz": 2, "batch_size": 0}})
    problems = e.value.problems
    assert "data.name: unknown dataset 'digts' (did you mean 'digits' or 'sort_digits' or 'diabetes'?)" in problems
    assert "model.widht: unknown setting for 'cnn' (did you mean 'width'?)" in problems
    assert "train.epochz: unknown key (did you mean 'epochs'?)" in problems
    assert "train.batch_size: input should be greater than or equal to 1" in problems
    assert "optimizer.lr: input should be greater than 0" in problems


@pytest.mark.parametrize("data, message", [
    ({**MINIMAL, "model": {"name": "cnn", "width": "wide"}}, "model.width: input should be a valid integer"),
    ({**MINIMAL, "seed": -1}, "seed: input should be greater than or equal to 0"),
    ({**MINIMAL, "name": "../escape"}, "name: value error"),
    ({**MINIMAL, "eval": {"metrics": ["acuracy"]}}, "did you mean 'accuracy'"),
    ({"name": "t", "data": {"name": "digits"}}, "model: missing"),
    ({**MINIMAL, "data": {"name": "digits", "split": [0.5, 0.5]}}, "data.split.2: missing"),
    ({**MINIMAL, "colour": 1}, "colour: unknown key"),
])
def test_bad_values_are_rejected(data, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        validate(data)


@pytest.mark.parametrize("text, message", [
    ("data: [1, 2\n", "invalid YAML at line"),
    ("- a\n- b\n", "a config is a mapping"),
    ("a: &x [1]\nb: *x\n", "aliases"),
])
def test_bad_yaml_is_one_clear_error(tmp_path, text, message):
    with pytest.raises(DlxError, match=message):
        load(write(tmp_path / "bad.yaml", text))


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(DlxError, match="no such config file"):
        load(tmp_path / "nope.yaml")
