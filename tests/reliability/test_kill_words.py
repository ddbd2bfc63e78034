"""kill -9 a skip-gram run at a random moment: `dlx train --resume` ends bitwise equal to the uninterrupted run, with
the epoch's subsampling, windows, shuffling and negative samples all in play."""
from __future__ import annotations

import random
import signal

from dlx.config import load
from dlx.train import loop
from tests.reliability.procs import assert_same_run, assert_valid_checkpoints, kill_after, sets, start
from tests.reliability.test_kill import resume_in_process
from tests.words import experiment

RANDOM = random.Random(14)
# frequent words thinned out, windows drawn, k noise words per pair, a last.pt every epoch
OVERRIDES = ["objective.subsample=0.05", "objective.negatives=3", "train.epochs=12", "train.batch_size=256",
             "train.checkpoint_seconds=0", "schedule.name=cosine"]


def test_skipgram_killed_at_a_random_moment_ends_as_the_uninterrupted_run(tmp_path):
    path = experiment(tmp_path)
    reference = loop.start(load(path, [*OVERRIDES, "name=reference"]), tmp_path / "reference", quiet=True)[0].path
    run = tmp_path / "runs" / "killed"
    proc = start(["train", str(path), *sets(OVERRIDES), "--name", "killed", "--runs-dir", str(run.parent), "--quiet"],
                 tmp_path / "log")
    assert kill_after(proc, run, RANDOM.randint(2, 9), RANDOM.uniform(0, 0.05)) == -signal.SIGKILL
    assert_valid_checkpoints(run)
    resume_in_process(run)
    assert_same_run(run, reference)
