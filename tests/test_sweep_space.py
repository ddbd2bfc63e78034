"""The search space: ranges, lists and the course's LR grid, and values that reach the config unchanged."""
from __future__ import annotations

import pytest
import yaml

from dlx.errors import ConfigError
from dlx.sweep import space


def test_the_course_lr_grid_multiplies_by_two_up_to_the_high_end():
    param = space.parse({"optimizer.lr": {"grid": "geometric", "low": 0.001, "high": 0.1, "factor": 2}})["optimizer.lr"]
    assert param.grid() == [0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064]


def test_kinds_of_parameter_and_their_grids():
    parsed = space.parse({"a": [1, 2], "b": {"values": ["x"]}, "c": {"low": 16, "high": 64, "step": 16},
                          "d": {"low": 0.0, "high": 0.5, "step": 0.1}, "e": {"low": 1e-4, "high": 0.1, "log": True}})
    assert parsed["a"].grid() == [1, 2] and parsed["b"].grid() == ["x"]
    assert parsed["c"].grid() == [16, 32, 48, 64] and parsed["c"].is_int
    assert parsed["d"].grid() == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]
    assert parsed["e"].grid() is None and space.continuous(parsed) == ["e"]
    assert len(space.grid_points({k: parsed[k] for k in "abc"})) == 2 * 1 * 4


@pytest.mark.parametrize("raw, message", [
    ({"x": {"low": 0.1, "high": 0.01}}, "empty or inverted range"),
    ({"x": {"low": 1, "high": 1}}, "empty or inverted range"),
    ({"x": []}, "at least 1 item"),
    ({"x": [1, 1]}, "the values repeat"),
    ({"x": {"low": 0, "high": 1, "log": True}}, "log range needs low > 0"),
    ({"x": {"low": 0.1, "high": 1, "log": True, "step": 0.1}}, "either log or stepped"),
    ({"x": {"grid": "geometric", "low": 0.1, "high": 0.01}}, "empty or inverted range"),
    ({"x": {"grid": "geometric", "low": 0.001, "high": 0.1, "factor": 1}}, "greater than 1"),
    ({"x": {"low": 0, "hgh": 1}}, "space.x.hgh"),
    ({"x": "0.1"}, "expected a list of values or a mapping"),
    ({}, "a mapping of dotted config paths"),
])
def test_bad_space_is_refused_with_its_path(raw, message):
    with pytest.raises(ConfigError, match=message):
        space.parse(raw)


@pytest.mark.parametrize("value", [1e-05, 0.001, 3, True, "64", "128-64", "relu", 0.1 + 0.2])
def test_a_value_reads_back_as_itself_through_the_set_path(value):
    from dlx.config import parse_override

    (override,) = space.overrides({"model.x": value})
    keys, parsed = parse_override(override)
    assert keys == ["model", "x"] and parsed == value and type(parsed) is type(value)
    assert yaml.safe_load(space.render(value)) == value


def test_a_component_name_is_set_before_its_settings():
    assert space.overrides({"model.sizes": "8", "model.name": "mlp"}) == ["model.name=mlp", "model.sizes='8'"]


def test_corner_values_use_every_end_of_every_range_once():
    parsed = space.parse({"a": {"low": 1, "high": 9}, "b": ["x", "y", "z"]})
    assert space.corner_values(parsed) == [{"a": 1, "b": "x"}, {"a": 9, "b": "x"}, {"a": 1, "b": "y"}, {"a": 1, "b": "z"}]
