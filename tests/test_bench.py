"""The benchmarks the README quotes still run (tiny settings: these are smoke tests, not timings)."""
from __future__ import annotations

import json
import re
import subprocess
import sys

from tests.conftest import ROOT


def bench(*args: str) -> str:
    result = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_loop_overhead_prints_both_ratios():
    out = bench("bench/loop_overhead.py", "--epochs", "2", "--repeats", "1", "--threads", "1", "digits_cnn.yaml")
    by_hand, loop_only = (float(r) for r in re.findall(r"ratio (\d+\.\d+)", out))
    assert 0.2 < by_hand < 5 and 0.2 < loop_only < 5, out


def test_data_path_prints_the_speed_up_for_training_and_for_the_data_path_alone():
    out = bench("bench/data_path.py", "--tiny", "--threads", "1")
    assert "training (forward, backward, step)" in out and "data path alone" in out
    assert len(re.findall(r"dlx is \d+\.\dx faster", out)) == 2, out
    assert "streaming 300 PNG files" in out and len(re.findall(r"streaming at \d+\.\d\dx its speed", out)) == 2, out


def test_the_gpu_suites_dry_run_runs_every_step_and_writes_what_it_measured_to_one_json(tmp_path):
    out = tmp_path / "suite.json"
    done = subprocess.run([sys.executable, "bench/gpu_suite.py", "--device", "cpu", "--tiny", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    report = json.loads(out.read_text())
    steps = report["steps"]
    assert list(steps) == ["tests", "loop_overhead", "text_throughput", "sampling_speed", "fast_paths", "ddp"]
    for name, step in steps.items():  # every step ran on the CPU (two gloo processes for ddp) and measured
        assert step["status"] in ("passed", "failed") and step["figures"], (name, step["error"])
        assert step["status"] == "passed" or step["error"], name
    assert steps["tests"]["figures"]["tests"] > 0 and steps["ddp"]["figures"]["nproc"] == 2
    assert {"bf16", "channels_last", "ema", "accumulate 4"} <= set(steps["fast_paths"]["figures"]["ratio_to_plain"])
    assert done.returncode == (0 if all(s["status"] == "passed" for s in steps.values()) else 1), done.stderr[-2000:]
    for name in steps:  # the table
        assert name in done.stdout


def test_startup_prints_a_ratio_to_import_torch_for_every_command():
    out = bench("bench/startup.py", "--repeats", "1")
    ratios = dict(re.findall(r"^(\S.*?)\s+\d+\.\d+s\s+ratio (\d+\.\d+)x", out, re.MULTILINE))
    assert set(ratios) >= {"import torch", "dlx --help", "dlx runs", "dlx runs compare", "dlx list models",
                           "dlx config digits_cnn.yaml", "dlx train digits_cnn.yaml, to its first step"}, out
    assert float(ratios["import torch"]) == 1.0


def test_data_memory_prints_peak_memory_of_both_sides_and_their_ratio():
    out = bench("bench/data_memory.py", "--tiny", "--threads", "1")
    for side in (r"float32 \(as before\)", r"uint8 \(now\)"):
        assert re.search(side + r"\s+peak memory\s+\d+ MB\s+for the data\s+-?\d+ MB\s+test accuracy \d\.\d{4}", out), out
    assert re.search(r"peak memory ratio -?\d+\.\d\dx for the process, -?\d+\.\d\dx for the data", out), out
