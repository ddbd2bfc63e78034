"""What a sweep found: a table of trials sorted by the metric, parameter importances, best.yaml
(the best trial's full config, ready for `dlx train`) and PNGs of the optimisation history and
the importances, all in runs/<study>/."""
from __future__ import annotations

import math
import warnings
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState
from rich.console import Console
from rich.table import Table

from dlx import tables

from dlx.config import dump
from dlx.atomic import write_atomic
from dlx.sweep import space
from dlx.sweep.spec import Sweep
from dlx.sweep.study import INTERRUPTED, Where, counted, target

ORDER = {TrialState.COMPLETE: 0, TrialState.PRUNED: 1, TrialState.FAIL: 2, TrialState.RUNNING: 3, TrialState.WAITING: 4}


def shown_value(trial: FrozenTrial) -> float | None:
    """A finished trial's value; a pruned trial's last reported value."""
    if trial.value is not None:
        return trial.value
    return trial.intermediate_values[max(trial.intermediate_values)] if trial.intermediate_values else None


def ranked(checked: Sweep, trials: list[FrozenTrial]) -> list[FrozenTrial]:
    """Complete trials best first, then pruned ones (by their last value), then failed, running, waiting."""
    sign = -1 if checked.direction == "maximize" else 1

    def key(t: FrozenTrial) -> tuple:
        value = shown_value(t)
        return ORDER[t.state], math.inf if value is None else sign * value, t.number

    return sorted(trials, key=key)


def table(checked: Sweep, shared: optuna.Study) -> Table:
    trials = [t for t in shared.get_trials(deepcopy=False) if not t.system_attrs.get(INTERRUPTED)]  # re-run elsewhere
    done = [t for t in trials if counted(t)]
    states = {s: sum(t.state == s for t in done) for s in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)}
    title = (f"sweep {shared.study_name}: {len(done)} of {target(shared) or checked.trials} trials done "
             f"({states[TrialState.COMPLETE]} complete, {states[TrialState.PRUNED]} pruned, {states[TrialState.FAIL]} failed)")
    columns = [tables.Column(c, text=c in ("state", "note"), fold=True)
               for c in ("trial", "state", checked.metric, "epochs", *checked.space, "time", "note")]
    rows = []
    for t in ranked(checked, trials):
        seconds = (t.datetime_complete - t.datetime_start).total_seconds() if t.datetime_complete and t.datetime_start else None
        note = t.user_attrs.get("error", "") or (f"re-run of {t.user_attrs['retry_of']}" if "retry_of" in t.user_attrs else "")
        rows.append((t.number, t.state.name.lower(), shown_value(t), len(t.intermediate_values),
                     *(space.short(t.params[p]) if p in t.params else "" for p in checked.space),
                     tables.seconds(seconds), note))
    return tables.table(columns, rows, title)


def importances(shared: optuna.Study) -> dict[str, float] | str:
    """fANOVA importances of the parameters, or why there are none yet."""
    complete = shared.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) < 2:
        return "importances need at least 2 complete trials"
    try:
        evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
        return optuna.importance.get_param_importances(shared, evaluator=evaluator)
    except (RuntimeError, ValueError) as e:  # e.g. every complete trial has the same values
        return f"no importances: {e}"


def write_best(checked: Sweep, shared: optuna.Study, where: Where) -> Path | None:
    complete = shared.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        return None
    config = checked.config(shared.best_trial.params, f"{where.study}-best")
    path = where.folder / "best.yaml"
    header = f"# best trial {shared.best_trial.number} of sweep {where.study}: {checked.metric} = {shared.best_value}\n"
    write_atomic(path, (header + dump(config)).encode())
    return path


def write_plots(shared: optuna.Study, where: Where, found: dict[str, float] | str) -> list[Path]:
    from dlx.plots import save  # first: it picks the Agg backend before optuna loads pyplot
    from optuna.visualization import matplotlib as optuna_plots

    drawn = [("history.png", lambda: optuna_plots.plot_optimization_history(shared))]
    if isinstance(found, dict) and found:
        drawn.append(("importances.png", lambda: optuna_plots.plot_param_importances(
            shared, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0))))
    paths = []
    for name, draw in drawn:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            ax = draw()
        paths.append(save(ax.figure, where.folder / name, crop=True))
    return paths


def show(checked: Sweep, shared: optuna.Study, where: Where, console: Console) -> None:
    """Print the table and importances; write best.yaml and the PNGs."""
    console.print(table(checked, shared))
    found = importances(shared)
    if isinstance(found, str):
        console.print(f"parameter importances: {found}", highlight=False)
    else:
        console.print("parameter importances: " + ", ".join(f"{k} {v:.2f}" for k, v in found.items()), highlight=False)
    if shared.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)):
        written = write_plots(shared, where, found)
        console.print("plots: " + ", ".join(map(str, written)), highlight=False)
    if best := write_best(checked, shared, where):
        console.print(f"best: trial {shared.best_trial.number}, {checked.metric} = {space.short(shared.best_value)}; "
                      f"train it with: dlx train {best}", highlight=False)
