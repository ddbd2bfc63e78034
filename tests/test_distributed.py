"""Data-parallel training on CPU: two gloo processes train like one process with the same global batch."""
from __future__ import annotations

import json
import shlex
import socket
import subprocess
import sys

import pytest

from dlx.run import checkpoint
from dlx.train import loop
from tests.conftest import EXPERIMENTS, ROOT

# no dropout and no batch norm: then two processes and one see the same mathematics
MLP = ["model.name=mlp", "model.sizes=32", "model.dropout=0", "train.epochs=3", "schedule.name=constant", "train.device=cpu",
       "optimizer.name=sgd", "optimizer.lr=0.1", "optimizer.momentum=0.9"]


def test_two_processes_follow_the_single_process_loss_curve_and_write_one_run(fast_config, runs_dir, tmp_path):
    _, single = loop.start(fast_config(*MLP, "name=single"), runs_dir / "one", quiet=True)
    args = [sys.executable, "-m", "dlx", "train", str(EXPERIMENTS / "digits_cnn.yaml"),
            *[a for o in MLP for a in ("--set", o)], "--name", "ddp", "--runs-dir", str(runs_dir / "two"),
            "--quiet", "--nproc", "2"]
    done = subprocess.run(args, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert [p.name for p in (runs_dir / "two").iterdir()] == ["ddp"]  # rank 1 wrote no run folder
    history = [json.loads(line) for line in (runs_dir / "two" / "ddp" / "metrics.jsonl").read_text().splitlines()]
    expected = [json.loads(line) for line in (runs_dir / "one" / "single" / "metrics.jsonl").read_text().splitlines()]
    assert [h["val/loss"] for h in history] == pytest.approx([h["val/loss"] for h in expected], rel=1e-4)
    summary = json.loads((runs_dir / "two" / "ddp" / "summary.json").read_text())
    assert summary["metrics"]["test"]["accuracy"] == pytest.approx(single["metrics"]["test"]["accuracy"], abs=0.01)


def test_a_run_interrupted_in_one_process_resumes_in_two(fast_config, runs_dir, tmp_path, monkeypatch):
    from tests.test_train import InterruptAt

    from dlx.train.interrupts import Interrupted

    _, straight = loop.start(fast_config(*MLP, "name=straight"), runs_dir, quiet=True)
    real_loss = loop.build.loss
    monkeypatch.setattr(loop.build, "loss", lambda *args: InterruptAt(real_loss(*args), 25))
    with pytest.raises(Interrupted):
        loop.start(fast_config(*MLP, "name=stopped"), runs_dir, quiet=True)
    done = subprocess.run([sys.executable, "-m", "dlx", "train", "--resume", str(runs_dir / "stopped"), "--quiet",
                           "--nproc", "2"], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    resumed = json.loads((runs_dir / "stopped" / "summary.json").read_text())
    assert resumed["steps"] == straight["steps"]
    assert resumed["metrics"]["val"]["loss"] == pytest.approx(straight["metrics"]["val"]["loss"], rel=1e-4)


def test_checkpoint_keys_of_wrapped_models_load_into_the_plain_module():
    state = {"_orig_mod.net.0.weight": 1, "module.net.0.bias": 2, "net.1.weight": 3}
    assert checkpoint.plain_keys(state) == {"net.0.weight": 1, "net.0.bias": 2, "net.1.weight": 3}


@pytest.mark.parametrize("name", ["gan", "vae", "skipgram", "seq2seq", "triplet", "siamese"])
def test_objectives_beyond_supervised_train_in_two_processes(name, runs_dir, tmp_path):
    from tests.test_objectives import COMMON, RECIPES

    args = [sys.executable, "-m", "dlx", "train", str(EXPERIMENTS / "digits_cnn.yaml"),
            *[a for o in [*COMMON, *RECIPES[name]] for a in ("--set", o)], "--name", name, "--runs-dir", str(runs_dir),
            "--quiet", "--nproc", "2"]
    done = subprocess.run(args, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert [p.name for p in runs_dir.iterdir()] == [name]
    summary = json.loads((runs_dir / name / "summary.json").read_text())
    assert summary["epochs"] == 3 and all(v == v for v in summary["metrics"]["test"].values())  # finite, not NaN
    last = checkpoint.load(runs_dir / name / "checkpoints" / "last.pt")
    assert all(state["state"] for state in last.optimizers.values())


def test_a_judged_dcgan_trains_in_two_processes(trained_runs, runs_dir, tmp_path):
    """Batch norm in both networks, the judge at every validation and the sample grid, under DDP."""
    from tests.test_objectives import COMMON

    overrides = [*COMMON, "objective.name=gan", "model.name=dcgan", "model.width=4", "model.noise=8",
                 "data.standardize=false", "schedule.name=constant", f"eval.judge={trained_runs['digits_cnn']}",
                 "eval.judge_samples=100", "train.monitor=val/frechet", "samples.every=2"]
    args = [sys.executable, "-m", "dlx", "train", str(EXPERIMENTS / "digits_cnn.yaml"),
            *[a for o in overrides for a in ("--set", o)], "--name", "dcgan", "--runs-dir", str(runs_dir), "--quiet",
            "--nproc", "2"]
    done = subprocess.run(args, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads((runs_dir / "dcgan" / "summary.json").read_text())
    assert summary["epochs"] == 3 and 0 < summary["metrics"]["test"]["frechet"] < float("inf")
    assert 0 <= summary["metrics"]["test"]["judge_coverage"] <= 10


def _loopback_port() -> int:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", 0))
        except OSError:
            pytest.skip("cannot bind a port on 127.0.0.1")
        return probe.getsockname()[1]


def readme_multinode_command() -> list[str]:
    """The README's multi-node torchrun line, continuation included."""
    text = (ROOT / "README.md").read_text().replace("\\\n", " ")
    line = next(line for line in text.splitlines() if line.startswith("torchrun --nnodes"))
    return shlex.split(line.split("#")[0])


def test_the_readmes_multinode_command_meets_on_two_nodes(runs_dir, tmp_path):
    """Two torchrun agents on loopback, each the README's line with one process: they find each other (the static
    rendezvous the README once gave hangs, both nodes taking rank 0) and train one run."""
    command = readme_multinode_command()
    assert command[:1] == ["torchrun"] and "HOST:29500" in command and "--nproc-per-node" in command
    endpoint = f"127.0.0.1:{_loopback_port()}"
    command = [sys.executable, "-m", "torch.distributed.run",
               *[endpoint if a == "HOST:29500" else a for a in command[1:]]]
    command[command.index("--nproc-per-node") + 1] = "1"
    command += [*[a for o in MLP for a in ("--set", o)], "--set", "train.epochs=1", "--name", "nodes",
                "--runs-dir", str(runs_dir), "--quiet"]
    nodes = [subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(2)]
    try:
        outputs = [node.communicate(timeout=300)[0] for node in nodes]
    finally:
        for node in nodes:
            node.kill()
    assert [node.returncode for node in nodes] == [0, 0], "\n".join(o[-2000:] for o in outputs)
    assert [p.name for p in runs_dir.iterdir()] == ["nodes"]  # the rank on the other node wrote no run folder
    assert json.loads((runs_dir / "nodes" / "summary.json").read_text())["epochs"] == 1
