"""Nothing outside the run folder is touched and nothing written is lost (issue #19): paths read from a sweep's
journal stay in the sweep folder, `dlx runs rm` deletes only what dlx wrote, a run has one writer at a time (a lock
the kernel drops with its process), every --out file is replaced whole or not at all, names made from inputs stay
in their folder, a resume notices an edited config, and an evaluation on other data keeps the run's own report."""
from __future__ import annotations

import errno
import io
import os
import shutil
import signal
import socket
from pathlib import Path

import optuna
import pytest
from rich.console import Console
from typer.testing import CliRunner

from dlx.atomic import FILE_MODE, write_atomic
from dlx.cli import app
from dlx.config import load, plain_name
from dlx.run import lock
from dlx.run.folder import Run, is_run
from dlx.sweep import study
from dlx.train import loop
from tests.conftest import EXPERIMENTS, TINY_MLP
from tests.reliability.procs import DIGITS, lines, sets, start, wait_until

pytestmark = pytest.mark.usefixtures("one_thread")
QUIET = Console(file=io.StringIO())


def dlx(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def one_error_line(result) -> str:
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    last = result.stderr.splitlines()[-1]
    assert last.startswith("error: ") and result.stderr.count("error: ") == 1, result.stderr
    return last


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    config = load(DIGITS, [*TINY_MLP, "train.epochs=1", "name=trained"])
    return loop.start(config, tmp_path_factory.mktemp("safety") / "runs", quiet=True, console=QUIET)[0].path


@pytest.fixture
def run(trained, tmp_path) -> Path:
    """A copy of the trained run, free to change."""
    return shutil.copytree(trained, tmp_path / "runs" / "copy", symlinks=True)


class Stop(Exception):
    """Raised by an epoch hook: the run stops as a crash would, after that epoch's checkpoints."""


def stopped_run(root: Path, after: int, *overrides: str) -> Path:
    """A run of 3 epochs stopped after epoch `after`: unfinished, ready to resume."""
    def hook(epoch, values):
        if epoch == after:
            raise Stop

    config = load(DIGITS, [*TINY_MLP, "train.epochs=3", "train.patience=null", "optimizer.lr=0.002", "name=stopped",
                           *overrides])
    with pytest.raises(Stop):
        loop.start(config, root, quiet=True, console=QUIET, on_epoch=hook)
    return root / "stopped"


# --- paths read from a sweep's journal ---------------------------------------------------------------------------
DEAD_PID = 2**22 + 1  # above Linux's largest pid: no process has it


def journal_with_a_dead_trial(where: study.Where, run_attr) -> optuna.Study:
    """A study whose one RUNNING trial belongs to a worker that is gone, and names `run_attr` as its run."""
    storage = study.open_storage(where)
    shared = optuna.create_study(study_name=where.study, storage=storage)
    trial = shared.ask()
    storage.set_trial_system_attr(trial._trial_id, study.WORKER, {"host": socket.gethostname(), "pid": DEAD_PID})
    storage.set_trial_user_attr(trial._trial_id, "run", run_attr)
    return shared


def trial_run(trained: Path, folder: Path, pid: int = DEAD_PID) -> Path:
    """A copy of a run as the worker `pid` left it: its lock file names that worker."""
    shutil.copytree(trained, folder)
    (folder / lock.NAME).write_text(f"{lock.MARK}\n{lock.process_id(pid, socket.gethostname())}: dlx sweep\n")
    return folder


@pytest.mark.parametrize("escape", ["../victim", "{outside}/victim", "link", "sub/../../victim", "..", "notes",
                                    "thesis", "."])
def test_a_tampered_journal_never_leads_a_deletion_out_of_the_sweep(tmp_path, trained, escape):
    sweep = tmp_path / "runs" / "s"
    victim = shutil.copytree(trained, tmp_path / "runs" / "victim")  # a real run, but not of this sweep
    sweep.mkdir()
    (sweep / "link").symlink_to(victim, target_is_directory=True)
    (sweep / "notes").mkdir()
    (sweep / "notes" / "keep.txt").write_text("mine")
    thesis = sweep / "thesis"  # a config.yaml and an empty checkpoints/ folder: not something dlx wrote
    (thesis / "checkpoints").mkdir(parents=True)
    (thesis / "config.yaml").write_text("name: thesis\n")
    where = study.Where(sweep, "s")
    shared = journal_with_a_dead_trial(where, escape.format(outside=tmp_path / "runs"))
    before = snapshot(tmp_path)
    assert study.recover(shared, study.open_storage(where), where) == [0]
    assert {k: v for k, v in snapshot(tmp_path).items() if "study.journal" not in k} == \
        {k: v for k, v in before.items() if "study.journal" not in k}


def test_the_partial_run_of_an_interrupted_trial_is_still_deleted(tmp_path, trained):
    where = study.Where(tmp_path / "runs" / "s", "s")
    folder = trial_run(trained, where.folder / "trial-0000")
    study.recover(journal_with_a_dead_trial(where, "trial-0000"), study.open_storage(where), where)
    assert not folder.exists()


def test_a_same_named_run_of_another_worker_is_not_deleted(tmp_path, trained):
    """trial-0000 left by an earlier study in the folder: the trial's worker made trial-0000-2, not this one."""
    where = study.Where(tmp_path / "runs" / "s", "s")
    earlier = trial_run(trained, where.folder / "trial-0000", pid=4242)
    study.recover(journal_with_a_dead_trial(where, "trial-0000"), study.open_storage(where), where)
    assert (earlier / "summary.json").is_file()


def test_a_trial_run_that_a_process_still_writes_to_is_not_deleted(tmp_path, trained):
    where = study.Where(tmp_path / "runs" / "s", "s")
    folder = trial_run(trained, where.folder / "trial-0000")
    live = Run(folder).claim("train")  # another host's worker, say, judged gone by a stale heartbeat
    (folder / lock.NAME).write_text(f"{lock.MARK}\n{lock.process_id(DEAD_PID, socket.gethostname())}: dlx sweep\n")
    try:
        study.recover(journal_with_a_dead_trial(where, "trial-0000"), study.open_storage(where), where)
        assert (folder / "config.yaml").is_file()
    finally:
        live.close()


def test_a_journal_planted_as_a_link_is_refused(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    sweep = tmp_path / "runs" / "digits_mlp_sweep"
    sweep.mkdir(parents=True)
    (sweep / "study.journal").symlink_to(victim)
    line = one_error_line(dlx("sweep", EXPERIMENTS / "digits_mlp_sweep.yaml", "--runs-dir", tmp_path / "runs",
                              "--trials", "1", "--resume"))
    assert "symbolic link" in line and victim.read_text() == "precious"


# --- what `dlx runs rm` deletes ---------------------------------------------------------------------------------
def lookalike(folder: Path, kind: str) -> Path:
    """Folders with the names a run has, but nothing dlx wrote."""
    (folder / "checkpoints").mkdir(parents=True)
    (folder / "config.yaml").write_text("name: thesis\n")
    (folder / "thesis.tex").write_text("\\chapter{years of work}")
    if kind == "foreign checkpoint":
        (folder / "checkpoints" / "last.pt").write_bytes(b"PK\x03\x04 not a torch archive")
    elif kind == "foreign metrics":
        (folder / "metrics.jsonl").write_text("not json\n[1, 2]\n")
    elif kind == "foreign summary":
        (folder / "summary.json").write_text('{"title": "my thesis"}')
    elif kind == "cross-validation lookalike":
        (folder / "fold-1").mkdir()
    elif kind == "foreign lock":
        (folder / lock.NAME).write_text("someone else's\n")
    return folder


@pytest.mark.parametrize("kind", ["names only", "foreign checkpoint", "foreign metrics", "foreign summary",
                                  "cross-validation lookalike", "foreign lock"])
def test_runs_rm_refuses_a_folder_that_only_has_a_runs_names(tmp_path, kind):
    folder = lookalike(tmp_path / "thesis", kind)
    before = snapshot(folder)
    assert "not a dlx run folder" in one_error_line(dlx("runs", "rm", folder, "--yes"))
    assert snapshot(folder) == before


@pytest.mark.parametrize("evidence", ["summary.json", "metrics.jsonl", "checkpoints/best.pt", lock.NAME])
def test_a_run_is_told_by_any_one_thing_dlx_writes(run, evidence):
    """Runs made before the lock file existed have no .dlx.lock, a run killed early no summary: any one will do."""
    keep = run / evidence
    for path in [run / "summary.json", run / "metrics.jsonl", run / lock.NAME, *run.glob("checkpoints/*.pt")]:
        if path != keep:
            path.unlink()
    assert is_run(run)
    assert dlx("runs", "rm", run, "--yes").exit_code == 0 and not run.exists()


# --- one writer per run -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("command", [["train", "--resume", "{run}"], ["runs", "rm", "{run}", "--yes"],
                                     ["evaluate", "{run}"], ["explain", "{run}", "-m", "saliency", "--index", "0"]])
def test_a_second_writer_of_a_run_in_use_is_refused_in_one_line(run, command):
    before = snapshot(run)
    holder = Run(run).claim("train")
    try:
        line = one_error_line(dlx(*(a.format(run=run) for a in command)))
    finally:
        holder.close()
    assert "another dlx process is writing to this run" in line and f"pid {os.getpid()} on " in line
    assert {k: v for k, v in snapshot(run).items() if k != lock.NAME} == \
        {k: v for k, v in before.items() if k != lock.NAME}


def test_a_cross_validation_whose_fold_is_in_use_is_not_deleted(tmp_path):
    from dlx import crossval

    config = load(DIGITS, [*TINY_MLP, "train.epochs=1", "name=cv"])
    parent = crossval.train(config, 2, tmp_path, quiet=True, console=QUIET)[0].path
    fold = parent / "fold-2"
    holder = Run(fold).claim("resume it")  # `dlx train --resume runs/cv/fold-2`
    try:
        one_error_line(dlx("runs", "rm", parent, "--yes"))
    finally:
        holder.close()
    assert (fold / "config.yaml").is_file()
    assert dlx("runs", "rm", parent, "--yes").exit_code == 0 and not parent.exists()


def test_a_training_process_holds_its_run_until_it_dies_even_by_sigkill(tmp_path):
    runs = tmp_path / "runs"
    proc = start(["train", DIGITS, *sets([*TINY_MLP, "train.epochs=500", "train.checkpoint_seconds=0"]), "--name",
                  "live", "--runs-dir", str(runs), "--quiet"], tmp_path / "log")
    live = runs / "live"
    try:
        wait_until(lambda: lines(live / "metrics.jsonl") >= 1 and (live / "checkpoints" / "last.pt").is_file(), proc)
        line = one_error_line(dlx("train", "--resume", live))
        assert f"pid {proc.pid} on " in line
        one_error_line(dlx("runs", "rm", live, "--yes"))
        assert (live / "checkpoints" / "last.pt").is_file()
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    Run(live).claim("resume it").close()  # the kernel dropped the lock with the process


def test_a_refused_resume_lets_go_of_the_run(tmp_path):
    """A resume that stops at a check (here: the run has finished) releases the lock for the next command."""
    config = load(DIGITS, [*TINY_MLP, "train.epochs=1", "name=done"])
    path = loop.start(config, tmp_path, quiet=True, console=QUIET)[0].path
    assert "has finished" in one_error_line(dlx("train", "--resume", path))
    Run(path).claim("check").close()


def test_a_lock_file_planted_as_a_link_is_replaced_not_written_through(run, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (run / lock.NAME).unlink()
    (run / lock.NAME).symlink_to(victim)
    Run(run).claim("check").close()
    assert victim.read_text() == "precious" and not (run / lock.NAME).is_symlink()


# --- outputs replaced whole or not at all ---------------------------------------------------------------------------
def fail_writes(monkeypatch) -> None:
    """Every write of a temporary file fails as on a full disk, after a first block reached it (the cut-off file)."""
    real = os.fsync

    def fsync(fd: int) -> None:
        if os.readlink(f"/proc/self/fd/{fd}").endswith(".tmp"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)


@pytest.fixture(scope="module")
def text_run(tmp_path_factory) -> Path:
    from dlx.config import validate

    folder = tmp_path_factory.mktemp("lm")
    (folder / "t.txt").write_text("the cat sat on the mat.\n" * 40)
    config = validate({
        "name": "tiny", "data": {"name": "text", "path": str(folder / "t.txt"), "block_size": 8, "steps_per_epoch": 2,
                                 "eval_windows": 2, "split": [0.8, 0.1, 0.1]},
        "model": {"name": "gpt", "width": 8, "heads": 1, "layers": 1}, "train": {"epochs": 1, "batch_size": 4, "device": "cpu"},
    })
    return loop.start(config, folder / "runs", quiet=True, console=QUIET)[0].path


OUT_COMMANDS = {
    "schedule": lambda out, run, text: ["schedule", DIGITS, "--out", out],
    "lr-find": lambda out, run, text: ["lr-find", DIGITS, *sets(TINY_MLP), "--steps", "10", "--out", out],
    "generate": lambda out, run, text: ["generate", text, "--max-new-tokens", "5", "--seed", "1", "--out", out],
    "runs compare": lambda out, run, text: ["runs", "compare", run, run, "--out", out],
}


@pytest.mark.parametrize("command", ["schedule", "lr-find", "runs compare"])
def test_an_out_file_of_an_unknown_image_kind_is_one_line_and_writes_nothing(tmp_path, trained, text_run, command):
    out = tmp_path / "out.txt"
    assert ".txt" in one_error_line(dlx(*OUT_COMMANDS[command](out, trained, text_run)))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", OUT_COMMANDS)
def test_a_full_disk_under_out_keeps_the_earlier_file_and_names_it(tmp_path, monkeypatch, trained, text_run, command):
    out = tmp_path / ("out.txt" if command == "generate" else "out.png")
    out.write_bytes(b"the earlier file, whole")
    fail_writes(monkeypatch)
    line = one_error_line(dlx(*OUT_COMMANDS[command](out, trained, text_run)))
    assert str(out) in line and "No space left on device" in line
    assert out.read_bytes() == b"the earlier file, whole" and list(tmp_path.iterdir()) == [out]


@pytest.mark.parametrize("command", OUT_COMMANDS)
def test_out_files_get_the_mode_the_umask_gives(tmp_path, trained, text_run, command):
    out = tmp_path / ("out.txt" if command == "generate" else "out.png")
    result = dlx(*OUT_COMMANDS[command](out, trained, text_run))
    assert result.exit_code == 0, result.output
    assert out.stat().st_mode & 0o777 == FILE_MODE


def test_every_file_of_a_run_gets_the_mode_the_umask_gives(text_run, tmp_path):
    plain = tmp_path / "plain"
    plain.write_text("")  # what open() gives a new file under this umask
    made = [p for p in text_run.rglob("*") if p.is_file() and not p.name.startswith("events.out")]
    assert {"config.yaml", "vocab.json", "summary.json", "best.pt", "last.pt"} <= {p.name for p in made}
    assert {p.name: p.stat().st_mode & 0o777 for p in made} == {p.name: plain.stat().st_mode & 0o777 for p in made}


def test_write_atomic_names_the_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "kept.json"
    target.write_text("{}")
    fail_writes(monkeypatch)
    with pytest.raises(OSError) as caught:
        write_atomic(target, b"[]")
    assert caught.value.filename == str(target) and caught.value.errno == errno.ENOSPC
    assert target.read_text() == "{}" and list(tmp_path.iterdir()) == [target]


# --- names made from inputs -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, expected", [("..", "input"), (".", "input"), ("", "input"), ("../../etc", "etc"),
                                            (".hidden", "hidden"), ("-rf", "rf"), ("a b/c", "a_b_c"), ("digit", "digit")])
def test_a_name_made_from_an_input_is_a_plain_name(text, expected):
    assert plain_name(text, "input") == expected


@pytest.mark.parametrize("file", ["...png", "..png", ".png", "-rf.png"])
def test_explain_keeps_an_input_named_like_a_path_inside_out(tmp_path, trained, file):
    from PIL import Image

    box = tmp_path / "box"
    box.mkdir()
    image = box / file
    Image.new("L", (8, 8), 90).save(image, format="PNG")
    result = dlx("explain", trained, "-m", "saliency", "--input", image, "--out", box / "out")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in box.iterdir()) == sorted([file, "out"])
    (written,) = (box / "out").iterdir()
    assert (written / "explanation.json").is_file()


# --- resuming -------------------------------------------------------------------------------------------------------------
def test_resume_after_config_yaml_was_edited_refuses_saying_what_changed(tmp_path):
    path = stopped_run(tmp_path, 1, "train.checkpoint_seconds=0")
    config = path / "config.yaml"
    config.write_text(config.read_text().replace("lr: 0.002", "lr: 0.5"))
    before = snapshot(path)
    line = one_error_line(dlx("train", "--resume", path))
    assert "optimizer.lr: 0.002 -> 0.5" in line and "--accept-config-change" in line
    assert snapshot(path).keys() == before.keys()
    assert {k: v for k, v in snapshot(path).items() if k != lock.NAME} == {k: v for k, v in before.items() if k != lock.NAME}
    result = dlx("train", "--resume", path, "--accept-config-change", "--quiet")
    assert result.exit_code == 0, result.output
    assert "continuing with a changed config: optimizer.lr: 0.002 -> 0.5" in result.stderr


def test_resume_refuses_a_folder_dlx_did_not_make_and_writes_nothing(tmp_path):
    folder = lookalike(tmp_path / "thesis", "names only")
    (folder / ".draft.tmp").write_text("unsaved")
    before = snapshot(folder)
    assert "not a run that dlx made" in one_error_line(dlx("train", "--resume", folder))
    assert snapshot(folder) == before and not (folder / lock.NAME).exists()


def test_resume_refuses_to_write_checkpoints_through_a_linked_folder(tmp_path, trained):
    other = shutil.copytree(trained, tmp_path / "other")
    path = stopped_run(tmp_path / "runs", 1, "train.checkpoint_seconds=0")
    shutil.rmtree(path / "checkpoints")
    (path / "checkpoints").symlink_to(other / "checkpoints", target_is_directory=True)
    before = snapshot(other)
    assert "symbolic link" in one_error_line(dlx("train", "--resume", path))
    assert snapshot(other) == before


def test_resume_deletes_only_its_own_temporaries(tmp_path):
    path = stopped_run(tmp_path, 1, "train.checkpoint_seconds=0")
    (path / ".notes.tmp").write_text("the user's")
    (path / "checkpoints" / ".last.pt.k2j4_x9a.tmp").write_bytes(b"half a checkpoint")  # write_atomic's, cut short
    assert dlx("train", "--resume", path, "--quiet").exit_code == 0
    assert (path / ".notes.tmp").read_text() == "the user's"
    assert not (path / "checkpoints" / ".last.pt.k2j4_x9a.tmp").exists()


def test_accept_config_change_needs_resume(tmp_path):
    assert "--resume" in one_error_line(dlx("train", DIGITS, "--accept-config-change", "--runs-dir", tmp_path))
    assert not tmp_path.joinpath("runs").exists() and list(tmp_path.iterdir()) == []


def test_a_resume_without_last_pt_says_truly_why_it_starts_over(tmp_path):
    """train.checkpoint_seconds deferred last.pt past the epochs the run logged (a full disk does the same)."""
    path = stopped_run(tmp_path, 2, "train.checkpoint_seconds=1000")
    assert not (path / "checkpoints" / "last.pt").exists() and lines(path / "metrics.jsonl") == 2
    result = dlx("train", "--resume", path, "--quiet")
    assert result.exit_code == 0, result.output
    said = " ".join(result.stderr.split())
    assert "before its first epoch ended" not in said
    assert "although 2 epoch(s) were logged" in said and "training again from the start" in said


# --- evaluating on other data ---------------------------------------------------------------------------------------------
def test_evaluating_on_other_data_keeps_the_runs_own_report_and_figures(run):
    assert dlx("evaluate", run).exit_code == 0
    own = {name: (run / name).read_bytes() for name in ("evaluation.json", "confusion_matrix-test.png")}
    result = dlx("evaluate", run, "--set", "data.split_seed=7")
    assert result.exit_code == 0, result.output
    assert {name: (run / name).read_bytes() for name in own} == own
    (report,) = run.glob("evaluation-*.json")
    figures = run / report.stem
    assert (figures / "confusion_matrix-test.png").is_file()
    assert dlx("evaluate", run, "--set", "data.split_seed=8").exit_code == 0
    assert len(list(run.glob("evaluation-*.json"))) == 2  # each set of data its own report


def test_evaluate_writes_no_figure_through_a_linked_folder(run, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert dlx("evaluate", run, "--set", "data.split_seed=7").exit_code == 0
    (figures,) = (p for p in run.glob("evaluation-*") if p.is_dir())
    shutil.rmtree(figures)
    figures.symlink_to(elsewhere, target_is_directory=True)
    assert "symbolic link" in one_error_line(dlx("evaluate", run, "--set", "data.split_seed=7"))
    assert list(elsewhere.iterdir()) == []


def test_evaluate_out_writes_the_report_there_not_into_the_run(run, tmp_path):
    assert dlx("evaluate", run).exit_code == 0
    own = (run / "evaluation.json").read_bytes()
    result = dlx("evaluate", run, "--split", "val", "--out", tmp_path / "elsewhere")
    assert result.exit_code == 0, result.output
    assert (run / "evaluation.json").read_bytes() == own
    assert "val/best" in (tmp_path / "elsewhere" / "evaluation.json").read_text()
