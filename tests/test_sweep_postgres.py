"""Two separate `dlx sweep` processes (as on two machines) share one study in a real PostgreSQL server:
together they run exactly the asked number of trials, none lost, none run twice.

.ci/run starts a throwaway PostgreSQL server on loopback and sets DLX_TEST_POSTGRES to its URL."""
from __future__ import annotations

import os
import subprocess
import sys
import uuid

import optuna
import pytest
from optuna.trial import TrialState

from tests.conftest import ROOT
from tests.sweeps import param_sets, write_sweep

URL = os.environ.get("DLX_TEST_POSTGRES")

pytestmark = pytest.mark.skipif(not URL, reason="needs a PostgreSQL server: set DLX_TEST_POSTGRES=postgresql://user:pw@host:port/db "
                                                "(.ci/run starts one on loopback)")

TRIALS = 6


def test_two_sweep_processes_share_one_study_exactly(tmp_path):
    sweep = write_sweep(tmp_path, trials=TRIALS)
    study = f"two-machines-{uuid.uuid4().hex[:8]}"
    command = [sys.executable, "-m", "dlx", "sweep", str(sweep), "--storage", URL, "--study", study,
               "--runs-dir", str(tmp_path / "runs")]
    processes = [subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for _ in range(2)]
    outputs = [p.communicate(timeout=300)[0].decode() for p in processes]
    assert [p.returncode for p in processes] == [0, 0], "\n".join(outputs)

    trials = optuna.load_study(study_name=study, storage=URL).get_trials()
    assert len(trials) == TRIALS and all(t.state == TrialState.COMPLETE for t in trials)
    assert len(set(param_sets(trials))) == TRIALS
    assert len({t.system_attrs["dlx:worker"]["pid"] for t in trials}) == 2  # both processes ran trials
    assert sorted(p.name for p in (tmp_path / "runs" / study).glob("trial-*")) == [f"trial-{n:04d}" for n in range(TRIALS)]
