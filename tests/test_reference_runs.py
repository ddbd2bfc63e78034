"""The reference runs give, number for number, what they gave before the spine's second edition (see reference_runs)."""
from __future__ import annotations

import json

from tests.reference_runs import FIXTURE, measure


def test_reference_runs_are_bitwise_unchanged():
    recorded = json.loads(FIXTURE.read_text())
    now = json.loads(json.dumps(measure()))  # through JSON, as recorded: floats compare by their exact repr
    for name in recorded:
        assert now[name] == recorded[name], name
