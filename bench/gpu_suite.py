"""The GPU suite: every fast path of dlx run and timed on a CUDA device, in at most 8 minutes, offline.

Steps, each a subprocess with its own time budget (a step that fails or runs out of time is recorded as
such and the suite goes on; a step that would start with less than a quarter of its budget left in the
suite's is skipped):

1. tests           the device-parametrised tests, on the device (`pytest -m cuda`)
2. loop_overhead   dlx against bare loops: digits MLP, digits CNN, MNIST-sized CNN, CIFAR-sized ResNet-20
3. text_throughput the char GPT with bf16 and torch.compile, dlx's tokens/s beside a bare loop's
4. sampling_speed  the KV cache against recomputing the window
5. fast_paths      fp16, bf16, compile, channels_last, EMA and accumulation, each against plain
6. ddp             `dlx train --nproc N` with nccl, N the number of GPUs, when there are two or more

Everything measured goes to one JSON file (--out), and a table is printed; the exit code is 1 when a step
failed or ran out of time. Tiny Shakespeare is read from
$DLX_DATA, ../shared/data or shared/data when one holds tinyshakespeare/input.txt; otherwise the text is
this Python's standard library (bench/text_throughput.py's fallback), so nothing is downloaded.

    python bench/gpu_suite.py [--device cuda] [--out gpu_suite.json] [--budget 480]
    python bench/gpu_suite.py --device cpu --tiny     # a dry run of every step with tiny sizes, no compile
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
TEXT_FOLDERS = [ROOT.parent / "shared" / "data", ROOT / "shared" / "data"]  # after $DLX_DATA
FAST_PATHS = ["fp16", "bf16", "compile", "channels_last", "ema", "accumulate 4"]


@dataclass
class Step:
    """One command of the suite; `figures` reads what it measured once it has run, `summary` says it in a line."""

    name: str
    budget: float  # seconds
    command: list[str]
    figures: Callable[[], dict]
    summary: Callable[[dict], str]
    skip: str | None = None  # why this step does not run on this machine


@dataclass
class Outcome:
    status: str  # passed, failed, timed out, skipped
    seconds: float = 0.0
    figures: dict = field(default_factory=dict)
    error: str | None = None
    summary: str = ""


def text_folder() -> Path | None:
    """Where tiny Shakespeare lies, as $DLX_DATA takes it; None: the benchmarks fall back to python_stdlib."""
    candidates = ([Path(os.environ["DLX_DATA"]).expanduser()] if "DLX_DATA" in os.environ else []) + TEXT_FOLDERS
    return next((folder for folder in candidates if (folder / "tinyshakespeare" / "input.txt").is_file()), None)


def bench_step(name: str, budget: float, work: Path, device: str, options: list[str],
               summary: Callable[[dict], str]) -> Step:
    """bench/<name>.py on the device, its figures written to a JSON file of the work folder."""
    out = work / f"{name}.json"
    return Step(name, budget, [sys.executable, str(BENCH / f"{name}.py"), "--device", device, "--json", str(out),
                               *options], lambda: json.loads(out.read_text()), summary)


def junit_figures(out: Path) -> dict:
    suite = ElementTree.parse(out).getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    counts = {key: int(suite.get(key, 0)) for key in ("tests", "failures", "errors", "skipped")}
    failed = [f"{case.get('classname')}::{case.get('name')}" for case in suite.iter("testcase")
              if case.find("failure") is not None or case.find("error") is not None]
    return {**counts, "passed": counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"],
            "failed": failed}


def ddp_figures(out: Path) -> dict:
    summary = json.loads(next(out.glob("*/summary.json")).read_text())
    return {"seconds": summary["seconds"], "device": summary["device"], "test": summary["metrics"]["test"],
            "steps": summary["steps"]}


def loop_summary(figures: dict) -> str:
    return "; ".join(f"{Path(name).stem} {f['ratio_by_hand']:.2f} (loop only {f['ratio_loop_only']:.2f})"
                     for name, f in figures.items())


def plan(args: argparse.Namespace, work: Path) -> list[Step]:
    """The steps for this device, full-sized or tiny."""
    python, device, tiny = sys.executable, args.device, args.tiny
    # a dry run keeps to one thread (a busy small CPU), tiny data and models, and no torch.compile (its C++ build
    # alone takes a minute on a CPU)
    thread = ["--threads", "1"] if tiny else []
    gpus = torch.cuda.device_count() if device == "cuda" else 0
    nproc = 2 if device == "cpu" else gpus  # on a CPU, two gloo processes exercise the step
    fast_paths = [p for p in FAST_PATHS if not (tiny and p == "compile")]
    return [
        Step("tests", 120, [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", device,
                            f"--junitxml={work / 'tests.xml'}",
                            *([str(ROOT / "tests")] if not tiny else
                              [str(ROOT / "tests" / "test_generate.py"), str(ROOT / "tests" / "test_fast_paths.py"),
                               "-k", "kv_cache or stay_on_the_training_device"])],
             lambda: junit_figures(work / "tests.xml"),
             lambda f: f"{f['passed']} passed, {f['failures'] + f['errors']} failed, {f['skipped']} skipped"),
        bench_step("loop_overhead", 90, work, device, [
            *(["--repeats", "3", "digits_mlp_bench.yaml", "digits_cnn.yaml", "mnist_sized_cnn.yaml"] if not tiny else
              ["--repeats", "1", "--epochs", "1", *thread, "--set", "data.n=128", "--set", "model.width=4"]),
            "cifar_sized_resnet20.yaml"], loop_summary),
        bench_step("text_throughput", 130, work, device, [
            "--repeats", "1", "--set", "train.precision=bf16",
            *(["--seconds", "45", "--steps", "100", "--set", "train.compile=true"] if not tiny else
              ["--seconds", "2", "--steps", "2", *thread, "--set", "model.layers=1", "--set", "model.width=32",
               "--set", "data.eval_windows=16"])],
            lambda f: f"{f['data']}: dlx {f['dlx_tokens_per_s']:.0f} tokens/s, bare {f['bare_tokens_per_s']:.0f} "
                      f"({f['ratio']:.2f})"),
        bench_step("sampling_speed", 30, work, device,
                   ["--repeats", "2"] if not tiny else ["--repeats", "1", "--tokens", "20", "--block", "16", *thread],
                   lambda f: f"KV cache {f['kv_cache_tokens_per_s']:.0f} tokens/s, recompute "
                             f"{f['recompute_tokens_per_s']:.0f} ({f['ratio']:.2f}x)"),
        bench_step("fast_paths", 110, work, device, [
            *[a for p in fast_paths for a in ("--switch", p)],
            *(["--repeats", "2"] if not tiny else
              ["--repeats", "1", "--epochs", "2", "--set", "data.n=256", "--set", "train.threads=1"])],
            lambda f: "; ".join([*(f"{name} {r:.2f}" for name, r in f["ratio_to_plain"].items() if name != "plain"),
                                 *(f"{name} FAILED" for name in f["failed"])])),
        Step("ddp", 60, [python, "-m", "dlx", "train", str(ROOT / "experiments" / "digits_cnn.yaml"), "--nproc",
                         str(nproc), "--runs-dir", str(work / "ddp"), "--quiet", "--set", f"train.device={device}",
                         *(["--set", "train.epochs=1", "--set", "model.width=8", "--set", "train.threads=1"] if tiny
                           else [])],
             lambda: {"nproc": nproc, **ddp_figures(work / "ddp")},
             lambda f: f"{f['nproc']} processes: {f['seconds']:.1f} s, test accuracy {f['test']['accuracy']:.3f}",
             skip=None if nproc >= 2 else f"{gpus} GPU(s): data-parallel training needs two or more"),
    ]


def run_step(step: Step, timeout: float, env: dict[str, str]) -> Outcome:
    started = time.perf_counter()
    # a session of its own: a step out of time is stopped with every process it started (DDP's ranks, say)
    with subprocess.Popen(step.command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          start_new_session=True) as process:
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            stdout, stderr = process.communicate()
            return Outcome("timed out", time.perf_counter() - started,
                           error=f"stopped after {timeout:.0f} s: {(stderr or stdout)[-1500:]}")
    seconds = time.perf_counter() - started
    print(stdout, end="", flush=True)
    try:
        figures = step.figures()
    except (OSError, StopIteration, ValueError, KeyError, ElementTree.ParseError):
        figures = {}
    if process.returncode != 0:
        return Outcome("failed", seconds, figures, f"exit code {process.returncode}: {(stderr or stdout)[-1500:]}")
    if not figures:
        return Outcome("failed", seconds, error="the step wrote no figures")
    return Outcome("passed", seconds, figures)


def machine(device: str) -> dict:
    info = {"device": device, "torch": torch.__version__, "python": platform.python_version(),
            "cpus": os.cpu_count(), "text": str(text_folder() or "python_stdlib (no tinyshakespeare found)")}
    if device == "cuda" and torch.cuda.is_available():
        info.update(gpus=[torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
                    cuda=torch.version.cuda)
    return info


def table(results: dict[str, Outcome], budgets: dict[str, float]) -> Table:
    view = Table(title="dlx GPU suite")
    for column in ("step", "status", "seconds", "figures"):
        view.add_column(column)
    for name, outcome in results.items():
        last_line = ([line for line in (outcome.error or "").splitlines() if line.strip()] or [""])[-1]
        view.add_row(name, outcome.status, f"{outcome.seconds:.0f} / {budgets[name]:.0f}",
                     "; ".join(filter(None, [outcome.summary, last_line[:160]])))
    return view


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--out", type=Path, default=Path("gpu_suite.json"), help="the JSON file of every figure")
    parser.add_argument("--budget", type=float, default=480.0, help="seconds for the whole suite")
    parser.add_argument("--tiny", action="store_true", help="a dry run: every step with tiny sizes, no compile")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device here (a dry run: --device cpu --tiny)")
    env = dict(os.environ)
    if text_folder() is not None:
        env["DLX_DATA"] = str(text_folder())
    suite_started = time.perf_counter()
    results: dict[str, Outcome] = {}
    with tempfile.TemporaryDirectory(prefix="dlx-gpu-suite-") as tmp:
        steps = plan(args, Path(tmp))
        for step in steps:
            left = args.budget - (time.perf_counter() - suite_started)
            if step.skip:
                outcome = Outcome("skipped", error=step.skip)
            elif left < step.budget / 4:
                outcome = Outcome("skipped", error=f"the suite's budget is spent ({left:.0f} s left)")
            else:
                print(f"--- {step.name} (at most {min(step.budget, left):.0f} s)", flush=True)
                outcome = run_step(step, min(step.budget, left), env)
            outcome.summary = step.summary(outcome.figures) if outcome.figures else ""
            results[step.name] = outcome
    report = {
        "machine": machine(args.device), "tiny": args.tiny, "budget": args.budget,
        "seconds": round(time.perf_counter() - suite_started, 1),
        "steps": {step.name: {"status": results[step.name].status, "seconds": round(results[step.name].seconds, 1),
                              "budget": step.budget, "command": step.command[1:], "figures": results[step.name].figures,
                              "error": results[step.name].error} for step in steps},
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    Console().print(table(results, {step.name: step.budget for step in steps}))
    print(f"{report['seconds']:.0f} s in all; every figure in {args.out}")
    if any(outcome.status in ("failed", "timed out") for outcome in results.values()):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
