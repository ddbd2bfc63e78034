"""The Optuna study behind a sweep: storage, samplers and pruners, and exact trial accounting.

Exactly the asked number of trials, with any number of workers on any number of machines: the
process that creates the study enqueues one WAITING trial ("slot") per trial asked for, and workers
claim slots with the storage's atomic WAITING -> RUNNING transition; no worker ever creates a trial
of its own, so no race can add one. Grid sweeps enqueue the grid points themselves.

A trial left RUNNING by a worker that is gone (a killed sweep, a dead machine) is *interrupted*:
whoever notices first (the storage lets one process finish a trial) marks it failed with a flag and
enqueues its parameters again, so it is neither lost nor counted twice. A worker is gone when it ran
on this host and its process no longer exists, or when its heartbeat is older than STALE_AFTER.
Counted toward the total: COMPLETE, PRUNED and FAIL trials that were not interrupted.
"""
from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from dlx.config import RUN_NAME
from dlx.errors import DlxError
from dlx.run.folder import delete, is_run
from dlx.run.lock import holder, process_id
from dlx.sweep.spec import Sweep

WORKER, BEAT, INTERRUPTED, TARGET, FINGERPRINT = "dlx:worker", "dlx:beat", "dlx:interrupted", "dlx:trials", "dlx:sweep"
BEAT_EVERY = 30.0  # seconds between heartbeats of a running trial
STALE_AFTER = 300.0  # a trial of another host without a heartbeat for this long is interrupted
READY_WAIT = 60.0  # how long a joining worker waits for the creator to enqueue the slots
SCHEMA_TRIES = 3

optuna.logging.set_verbosity(optuna.logging.WARNING)


@dataclass(frozen=True)
class Where:
    """Where a sweep lives: its folder (trial runs, embedded storage, report) and its study."""

    folder: Path  # runs/<study>
    study: str
    url: str | None = None  # an RDB URL; None: the journal file in the folder

    @property
    def journal(self) -> Path:
        return self.folder / "study.journal"

    def describe(self) -> str:
        return str(self.journal) if self.url is None else _redact(self.url)


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL at all: nothing to hide
        return url


def open_storage(where: Where) -> BaseStorage:
    """The journal file in the sweep folder (safe for worker processes on this machine), or an RDB."""
    if where.url is None:
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        where.folder.mkdir(parents=True, exist_ok=True)
        if where.journal.is_symlink():  # the journal is appended to: a link would carry the writes out of the sweep
            raise DlxError(f"{where.journal}: a symbolic link; a sweep's journal must be a file in its folder")
        return JournalStorage(JournalFileBackend(str(where.journal)))
    import sqlalchemy.exc

    shown, url = _redact(where.url), where.url
    if url.startswith("postgresql://"):  # the driver dlx[postgres] installs, whatever SQLAlchemy's default
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    engine = {"connect_args": {"connect_timeout": 10}} if url.startswith("postgresql") else {}
    try:
        for attempt in range(SCHEMA_TRIES):
            try:  # one storage object (with Optuna's cache) for everything this process does
                return optuna.storages.get_storage(optuna.storages.RDBStorage(url, engine_kwargs=engine))
            except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError):
                if attempt == SCHEMA_TRIES - 1:  # two machines creating the tables of a new database at once
                    raise
                time.sleep(1.0)
    except ImportError as e:
        raise DlxError(f"--storage {shown}: the database driver is missing ({e}); for PostgreSQL: "
                       "pip install 'dlx[postgres]'") from None
    except (sqlalchemy.exc.SQLAlchemyError, ValueError) as e:
        reason = str(getattr(e, "orig", None) or e).strip().splitlines()[0]
        raise DlxError(f"--storage {shown}: cannot open the database ({reason})") from None


def exists(storage: BaseStorage, name: str) -> bool:
    return any(s.study_name == name for s in storage.get_all_studies())


# --- samplers and pruners ----------------------------------------------------------------------------
def sampler(sweep: Sweep, number: int) -> optuna.samplers.BaseSampler:
    """A sampler seeded by (sweep seed, trial number): workers never draw the same values from the same
    state, and a one-worker sweep is reproducible. Samplers keep their state in the storage."""
    seed = (sweep.file.seed * 1_000_003 + number) % 2**32
    method = sweep.file.method
    if method == "tpe":
        return optuna.samplers.TPESampler(seed=seed, constant_liar=True)  # running trials count as bad guesses
    if method == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
    return optuna.samplers.RandomSampler(seed=seed)  # random; grid trials arrive with their fixed values


def pruner(sweep: Sweep) -> optuna.pruners.BasePruner:
    name = sweep.file.pruner
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=sweep.epochs, reduction_factor=3)
    if name == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    return optuna.pruners.NopPruner()


def load(sweep: Sweep, storage: BaseStorage, where: Where, number: int = 0) -> optuna.Study:
    return optuna.load_study(study_name=where.study, storage=storage, sampler=sampler(sweep, number), pruner=pruner(sweep))


# --- accounting ----------------------------------------------------------------------------------------
def counted(trial: FrozenTrial) -> bool:
    if trial.state in (TrialState.COMPLETE, TrialState.PRUNED):
        return True
    return trial.state == TrialState.FAIL and not trial.system_attrs.get(INTERRUPTED)


def pending(trial: FrozenTrial) -> bool:
    return trial.state in (TrialState.RUNNING, TrialState.WAITING)


def target(study: optuna.Study) -> int | None:
    return study.user_attrs.get(TARGET)


def top_up(study: optuna.Study, sweep: Sweep, trials: int) -> int:
    """Enqueue slots until counted + running + waiting trials reach `trials`; returns how many."""
    live = [t for t in study.get_trials(deepcopy=False) if counted(t) or pending(t)]
    if trials < len(live):
        raise DlxError(f"study '{study.study_name}' already has {len(live)} trials; --trials must be at least that")
    missing = trials - len(live)
    if sweep.file.method == "grid":
        taken = [t.system_attrs.get("fixed_params", t.params) for t in live]
        points = [p for p in sweep.grid() if p not in taken][:missing]
    else:
        points = [{}] * missing
    for params in points:
        study.enqueue_trial(params)
    study.set_user_attr(TARGET, trials)
    return len(points)


def prepare(sweep: Sweep, storage: BaseStorage, where: Where, resume: bool, trials: int | None) -> optuna.Study:
    """Create the study with its slots, join it (another machine's `dlx sweep`), or resume it."""
    taken = DlxError(f"{where.folder} already holds sweep '{where.study}'; continue it with --resume, "
                     "see it with --status, or start another with --study NAME")
    found = exists(storage, where.study)
    if resume and not found:
        raise DlxError(f"nothing to resume: no study '{where.study}' in {where.describe()}; start it without --resume")
    if found and not resume and where.url is None:
        raise taken
    if not found:
        try:
            study = optuna.create_study(study_name=where.study, storage=storage, direction=sweep.direction)
        except optuna.exceptions.DuplicatedStudyError:
            if where.url is None:  # another `dlx sweep` here created it a moment ago
                raise taken from None
            # another machine created it a moment ago: join
        else:
            study.set_user_attr(FINGERPRINT, sweep.fingerprint())
            top_up(study, sweep, sweep.trials)  # sets TARGET last: the study is ready for joiners
            return study
    study = load(sweep, storage, where)
    if study.user_attrs.get(FINGERPRINT, sweep.fingerprint()) != sweep.fingerprint():
        raise DlxError(f"study '{where.study}' in {where.describe()} was started from a different sweep file; "
                       "use the same file, or another --study NAME")
    if resume:  # also finishes the set-up of a creator that stopped half-way
        recover(study, storage, where)
        top_up(study, sweep, trials or target(study) or sweep.trials)
    else:
        _wait_until_ready(study)
    return study


def _wait_until_ready(study: optuna.Study) -> None:
    deadline = time.monotonic() + READY_WAIT
    while target(study) is None:
        if time.monotonic() > deadline:
            raise DlxError(f"study '{study.study_name}' was never set up (its creator stopped early); "
                           "run the same command with --resume")
        time.sleep(0.5)


# --- claiming and finishing trials ------------------------------------------------------------------------
def claim(study: optuna.Study, storage: BaseStorage) -> int | None:
    """Atomically take a WAITING slot (the storage refuses the transition to all but one process).
    Returns the trial id, or None when no slot is left. What Study.ask does, minus creating new trials."""
    for trial in study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        try:
            if storage.set_trial_state_values(trial._trial_id, state=TrialState.RUNNING):
                storage.set_trial_system_attr(trial._trial_id, WORKER, {"host": socket.gethostname(), "pid": os.getpid()})
                return trial._trial_id
        except UpdateFinishedTrialError:
            continue
    return None


@contextmanager
def heartbeat(storage: BaseStorage, trial_id: int) -> Iterator[None]:
    """Record that this trial's worker is alive, every BEAT_EVERY seconds, while the block runs."""
    done = threading.Event()

    def beat() -> None:
        while not done.wait(BEAT_EVERY):
            try:
                storage.set_trial_system_attr(trial_id, BEAT, time.time())
            except Exception:  # the trial finished meanwhile, or the database is briefly away: try again later
                pass

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def alive(pid: int) -> bool:
    """Whether a process of this machine is running (a zombie, killed and not yet reaped, is not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        pass
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except (OSError, IndexError):  # no /proc here: existing is all we know
        return True


def _gone(trial: FrozenTrial, now: float) -> bool:
    worker = trial.system_attrs.get(WORKER)
    if worker and worker["host"] == socket.gethostname():
        return not alive(worker["pid"])
    started = trial.datetime_start.timestamp() if trial.datetime_start else now
    return now - trial.system_attrs.get(BEAT, started) > STALE_AFTER  # the last sign of life


def _finish_failed(storage: BaseStorage, trial: FrozenTrial, system: dict[str, Any], user: dict[str, Any]) -> bool:
    """Mark a RUNNING trial failed with these attributes; False when another process finished it first."""
    try:
        for key, value in system.items():
            storage.set_trial_system_attr(trial._trial_id, key, value)
        for key, value in user.items():
            storage.set_trial_user_attr(trial._trial_id, key, value)
        return storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
    except UpdateFinishedTrialError:
        return False


def trial_folder(where: Where, trial: FrozenTrial) -> Path | None:
    """The run folder of a trial, if the storage names one of this sweep: a plain name of a folder right in the
    sweep folder, a run that the trial's own worker created (its lock file names the worker's pid and host; a folder of the
    same name left by an earlier study is another run). A journal or database says what it was told, or what
    someone wrote into it: a name like '../x' or '/home' must never lead a deletion out of the sweep folder."""
    run, worker = trial.user_attrs.get("run"), trial.system_attrs.get(WORKER) or {}
    if not isinstance(run, str) or not RUN_NAME.match(run):
        return None
    folder = where.folder / run
    if folder.is_symlink() or not folder.is_dir() or folder.resolve().parent != where.folder.resolve():
        return None
    return folder if holder(folder).startswith(f"{process_id(worker.get('pid'), worker.get('host'))}:") else None


def interrupt(study: optuna.Study, storage: BaseStorage, where: Where, trial: FrozenTrial, why: str) -> None:
    """Give up a trial that did not get to finish, and enqueue its values again; its partial run goes (only a run
    folder of this sweep, and only if no process is writing to it)."""
    if _finish_failed(storage, trial, {INTERRUPTED: True}, {"error": f"interrupted ({why}); re-enqueued"}):
        study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number})
        if folder := trial_folder(where, trial):
            with contextlib.suppress(DlxError, OSError):  # in use, or already gone: it stays, the trial runs again
                delete(folder, owned=True)  # its lock names the trial's worker, even when no config.yaml was written yet


def recover(study: optuna.Study, storage: BaseStorage, where: Where) -> list[int]:
    """Interrupt every RUNNING trial whose worker is gone; returns their numbers."""
    now = time.time()
    stale = [t for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)) if _gone(t, now)]
    for trial in stale:
        interrupt(study, storage, where, trial, "its worker stopped")
    return [t.number for t in stale]


def fail_orphans(study: optuna.Study, storage: BaseStorage, pid: int, why: str) -> None:
    """A worker process of this sweep died under it (the out-of-memory killer, most often): its trial
    failed, and counts; running it again would only die again."""
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = trial.system_attrs.get(WORKER) or {}
        if worker.get("host") == socket.gethostname() and worker.get("pid") == pid:
            _finish_failed(storage, trial, {}, {"error": why, "oom": "memory" in why})
