"""The dlx command line. Each command parses its options and calls one function; only here do errors
become exit codes: a DlxError is one line on stderr and exit code 2."""
from __future__ import annotations

import contextlib
import functools
import json
import os
import sys
from pathlib import Path
from typing import Annotated, Literal, Optional

import typer
from rich.console import Console
from rich.markup import escape

import dlx
from dlx import tables

app = typer.Typer(name="dlx", help="Deep-learning experiments from YAML: train, evaluate, explain, generate, sweep.",
                  no_args_is_help=True, rich_markup_mode="rich", pretty_exceptions_enable=False)
out = Console()
err = Console(stderr=True)

RUN_PANEL, INSPECT_PANEL = "Run", "Inspect"

Overrides = Annotated[Optional[list[str]], typer.Option("--set", "-s", metavar="KEY=VALUE",
                                                        help="Override a config value, e.g. optimizer.lr=0.01 (repeatable).")]
Device = Annotated[Optional[str], typer.Option(help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps.")]
RunsDir = Annotated[Path, typer.Option("--runs-dir", help="Where run folders are created.")]


def fail(message: str) -> None:
    if _speaks():
        err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)  # a message's [..] is text
    raise typer.Exit(2)


def _speaks() -> bool:
    """Under torchrun every rank runs the same command on the same files, so rank 0 speaks for all."""
    return os.environ.get("RANK", "0") == "0"


def user_errors(command):
    """Turn a DlxError into one line on stderr and exit code 2; never a traceback for the user's mistakes."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        from dlx.errors import DlxError
        from dlx.train.interrupts import Interrupted

        try:
            return command(*args, **kwargs)
        except DlxError as e:
            fail(str(e))
        except OSError as e:  # a full disk, a missing folder, no permission: a fault of the machine, not of dlx
            fail(f"{e.filename}: {e.strerror}" if e.filename and e.strerror else f"cannot read or write a file ({e})")
        except Interrupted as e:
            err.print(f"[yellow]{escape(str(e))}[/]", highlight=False, soft_wrap=True)  # the command in one piece
            raise typer.Exit(e.exit_code) from None

    return wrapper


def _version(value: bool) -> None:
    if value:
        out.print(f"dlx {dlx.__version__}")
        raise typer.Exit()


@app.callback()
def main(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                               help="Print the version and exit.")] = False) -> None:
    """dlx: deep-learning experiments from YAML files. Every run goes to runs/<name>/."""


def _load(experiment: Path, overrides: list[str] | None, device: str | None = None, name: str | None = None):
    from dlx.config import load

    extra = list(overrides or [])
    if device:
        extra.append(f"train.device={device}")
    if name:
        extra.append(f"name={name}")
    return load(experiment, extra, lambda note: err.print(f"note: {escape(note)}", highlight=False, soft_wrap=True))


@app.command(rich_help_panel=RUN_PANEL)
@user_errors
def train(
    experiment: Annotated[Optional[Path], typer.Argument(help="Experiment YAML, or a run's config.yaml to reproduce it.")] = None,
    overrides: Overrides = None,
    name: Annotated[Optional[str], typer.Option(help="Run name (default: the config's name).")] = None,
    device: Device = None,
    resume: Annotated[Optional[Path], typer.Option(help="Continue this run folder from its last checkpoint.")] = None,
    accept_config_change: Annotated[bool, typer.Option(
        "--accept-config-change", help="With --resume: continue although config.yaml was edited since the checkpoint.")] = False,
    runs_dir: RunsDir = Path("runs"),
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Plain progress lines instead of a live display.")] = False,
    folds: Annotated[Optional[int], typer.Option(
        help="k-fold cross-validation: K child runs in one parent folder, with each metric's mean and std.")] = None,
    bagging: Annotated[Optional[int], typer.Option(
        help="Bagging: K child runs, each on a bootstrap resample of the train split; a committee with --ensemble.")] = None,
    nproc: Annotated[Optional[int], typer.Option(
        help="Train data-parallel in N processes on this machine (torchrun; gloo on CPU, nccl on CUDA).")] = None,
) -> None:
    """Train a model from an experiment file."""
    from dlx import crossval
    from dlx.train import distributed, loop

    if nproc is not None:
        if experiment is not None:  # a mistake in the config is one line here, not one per rank after torchrun starts
            _load(experiment, overrides, device, name)
        args = ["train", *([str(experiment)] if experiment else []), *[a for o in overrides or [] for a in ("--set", o)],
                *(["--name", name] if name else []), *(["--device", device] if device else []),
                *(["--resume", str(resume)] if resume else []), *(["--accept-config-change"] if accept_config_change else []),
                "--runs-dir", str(runs_dir), *(["--quiet"] if quiet else [])]
        raise typer.Exit(distributed.launch(nproc, args))

    if accept_config_change and resume is None:
        fail("--accept-config-change goes with --resume RUN")
    if resume is not None:
        if experiment is not None or overrides or name or device or folds or bagging:
            fail("--resume continues a run with its saved config; give no experiment, --set, --name, --device, --folds "
                 "or --bagging")
        if crossval.is_parent(resume):
            run, summary = crossval.resume(resume, quiet=quiet, console=err)
            return crossval.print_summary(out, run.path, summary)
        run, summary = loop.resume(resume, quiet=quiet, console=err, accept_config_change=accept_config_change)
    elif experiment is None:
        fail("give an experiment file (e.g. experiments/digits_cnn.yaml) or --resume RUN")
    elif folds is not None and bagging is not None:
        fail("--folds and --bagging each make a parent of member runs; give one of them")
    elif folds is not None or bagging is not None:
        scheme, k = (crossval.FOLDS, folds) if folds is not None else (crossval.BAGGING, bagging)
        run, summary = crossval.train(_load(experiment, overrides, device, name), k, runs_dir, quiet=quiet, console=err,
                                      scheme=scheme)
        return crossval.print_summary(out, run.path, summary)
    else:
        run, summary = loop.start(_load(experiment, overrides, device, name), runs_dir, quiet=quiet, console=err)
    if _speaks():
        _print_summary(run.path, summary)


def _print_summary(path: Path, summary: dict) -> None:
    out.print(f"[bold]{path}[/]: {summary['epochs']} epochs, {summary['seconds']:.1f}s on {summary['device']}, "
              f"best epoch {summary['best_epoch']}", highlight=False)
    names = list(summary["metrics"]["test"])
    out.print(tables.table(["split", *names], [(split, *(values[n] for n in names))
                                                for split, values in summary["metrics"].items()]))


@app.command(rich_help_panel=RUN_PANEL)
@user_errors
def evaluate(
    runs: Annotated[list[Path], typer.Argument(help="A run folder, e.g. runs/digits_cnn; several with --ensemble.")],
    split: Annotated[str, typer.Option(help="train, val or test.")] = "test",
    checkpoint: Annotated[str, typer.Option(help="best or last.")] = "best",
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    overrides: Annotated[Optional[list[str]], typer.Option(
        "--set", "-s", metavar="data.KEY=VALUE", help="Evaluate on other data, e.g. --set data.path=new.csv.")] = None,
    ensemble: Annotated[Optional[str], typer.Option(
        help="Evaluate the runs as a committee: vote (majority of the classes, ties by mean probability) or mean "
             "(average probability; regression always averages).")] = None,
    reject_margin: Annotated[Optional[list[str]], typer.Option(
        "--reject-margin", metavar="M|START:STOP:STEP",
        help="The reject option: refuse when the two largest probabilities differ by less than M (repeatable).")] = None,
    threshold: Annotated[Optional[float], typer.Option(
        help="Two-class runs: answer class 1 when its probability reaches this (default 0.5).")] = None,
    top_losses: Annotated[int, typer.Option(help="A gallery PNG of the N examples with the largest losses.")] = 0,
    figures_dir: Annotated[Optional[Path], typer.Option(
        "--out", help="Folder for the figures and evaluation.json (default: the run folder; a committee: ./committee-MODE).")] = None,
    probe: Annotated[Optional[list[str]], typer.Option(
        help="Word vectors (skipgram/cbow runs): the nearest neighbours of this word by cosine (repeatable).")] = None,
    analogies: Annotated[Optional[Path], typer.Option(
        help="Word vectors: accuracy on a file of 'a b c d' lines (d nearest to b - a + c).")] = None,
    word_map: Annotated[Optional[str], typer.Option(
        "--map", help="Word vectors: the 2-D map of the most frequent words by pca or tsne (default: pca).")] = None,
    judge: Annotated[Optional[Path], typer.Option(
        help="A generative run (GAN, VAE): the classifier run that judges its samples (default: its eval.judge).")] = None,
) -> None:
    """Metrics of a trained run (or a committee of runs) on a split: a table (or JSON), evaluation.json and
    figures: confusion matrix, ROC curve (two classes), reject curve, largest losses, regression residuals; for a
    VAE's or GAN's run, its objective's terms and pictures, or its samples judged by a classifier; for word vectors,
    neighbours, analogies, a word map and TensorBoard's projector."""
    from dlx import analysis, embeddings
    from dlx import evaluate as evaluation

    request = evaluation.Request(split, checkpoint, overrides or [], ensemble, analysis.parse_margins(reject_margin or []),
                                 threshold, top_losses, figures_dir,
                                 probes=embeddings.Probes(probe or [], analogies, word_map), judge=judge)
    report = evaluation.evaluate(runs, request)
    if as_json:
        print(json.dumps(report, indent=2))
    else:
        evaluation.print_report(out, report)


@app.command("list", rich_help_panel=INSPECT_PANEL)
@user_errors
def list_entries(
    kind: Annotated[Optional[str], typer.Argument(help="models, datasets, losses, optimizers, schedules, metrics, ...")] = None,
    pattern: Annotated[str, typer.Argument(help="Shell-style wildcard, e.g. 'res*'.")] = "*",
) -> None:
    """Browse the registries: names with one-line descriptions."""
    from dlx import registry
    from dlx.errors import UnknownName

    if kind is None:
        for k, reg in registry.ALL.items():
            out.print(f"[bold]{k}[/] ({len(reg.names())}): {', '.join(reg.names())}")
        return
    reg = registry.ALL.get(kind) or registry.ALL.get(kind + "s")
    if reg is None:
        raise UnknownName("registry", kind, registry.ALL)
    entries = reg.list(pattern)
    if not entries:
        fail(f"no {kind} matches '{pattern}'; `dlx list {kind}` shows them all")
    names = [entry.name + (f" ({', '.join(aliases)})" if (aliases := reg.aliases_of(entry.name)) else "")
             for entry in entries]
    out.print(tables.table([tables.Column(reg.kind, text=True, style="bold"), tables.Column("description", text=True)],
                           zip(names, (entry.description for entry in entries))))


@app.command(rich_help_panel=INSPECT_PANEL)
@user_errors
def config(
    experiment: Annotated[Path, typer.Argument(help="Experiment YAML.")],
    overrides: Overrides = None,
) -> None:
    """Print the resolved, validated config (bases merged, overrides applied, defaults filled in)."""
    from dlx.config import dump

    print(dump(_load(experiment, overrides)), end="")


@app.command(rich_help_panel=INSPECT_PANEL)
@user_errors
def schedule(
    experiment: Annotated[Path, typer.Argument(help="Experiment YAML.")],
    overrides: Overrides = None,
    out: Annotated[Optional[Path], typer.Option(help="The PNG to write (default: <name>-schedule.png).")] = None,
) -> None:
    """Draw the learning rate over the run's steps (and a cycled momentum), without training."""
    from dlx.schedule_plot import plot_schedule

    config = _load(experiment, overrides)
    written = plot_schedule(config, out or Path(f"{config.name}-schedule.png"))
    err.print(f"wrote {written}", highlight=False, soft_wrap=True)


@app.command("lr-find", rich_help_panel=INSPECT_PANEL)
@user_errors
def lr_find(
    experiment: Annotated[Path, typer.Argument(help="Experiment YAML.")],
    overrides: Overrides = None,
    steps: Annotated[int, typer.Option(help="Length of the ramp in optimizer steps (at least 10).")] = 300,
    start: Annotated[float, typer.Option(help="The first learning rate.")] = 1e-7,
    end: Annotated[float, typer.Option(help="The last learning rate.")] = 10.0,
    png: Annotated[Optional[Path], typer.Option("--out", help="The PNG to write (default: <name>-lr-find.png).")] = None,
    device: Device = None,
) -> None:
    """Find a learning rate: train along an exponential ramp of rates, draw loss against rate and suggest one."""
    from dlx.lr_find import lr_find as find

    result, written = find(_load(experiment, overrides, device), steps, start, end, png)
    out.print(f"wrote {written}", highlight=False, soft_wrap=True)
    ending = "stopped early: the loss diverged" if result.stopped_early else "the whole ramp"
    out.print(f"{len(result.lrs)} steps ({ending}); lowest smoothed loss {result.smoothed[result.best]:.4g} at lr "
              f"{result.lrs[result.best]:.3g}", highlight=False, soft_wrap=True)
    if result.hint:
        err.print(f"[yellow]{result.hint}[/]", highlight=False, soft_wrap=True)
    out.print(f"suggested lr: {result.suggestion:.3g}  (the minimum's rate / 10; try --set optimizer.lr={result.suggestion:.2g})",
              highlight=False, soft_wrap=True)


runs_app = typer.Typer(no_args_is_help=False)
app.add_typer(runs_app, name="runs", rich_help_panel=INSPECT_PANEL)
RunsFolder = Annotated[Path, typer.Option("--runs-dir", help="The runs folder.")]


@runs_app.callback(invoke_without_command=True)
@user_errors
def runs(
    ctx: typer.Context,
    sort: Annotated[Optional[str], typer.Option(
        help="name, epochs, seconds or a final metric such as test/accuracy or val/loss (best first).")] = None,
    filters: Annotated[Optional[list[str]], typer.Option(
        "--filter", metavar="KEY=VALUE", help="Keep runs whose config has KEY=VALUE (model.name=cnn, status=finished).")] = None,
    runs_dir: RunsFolder = Path("runs"),
) -> None:
    """A table of runs: data and model, status (finished, interrupted, running or crashed; a cross-validation or a
    sweep in one row), epochs, best validation metric, test metric and duration. Subcommands compare and remove runs."""
    if ctx.invoked_subcommand is not None:
        return
    from dlx import runs_table

    rows = runs_table.order(runs_table.select(runs_table.find(runs_dir), filters or []), sort)
    out.print(runs_table.table(rows, f"{len(rows)} run{'' if len(rows) == 1 else 's'} in {runs_dir}", sort))


@runs_app.command("compare")
@user_errors
def runs_compare(
    paths: Annotated[list[Path], typer.Argument(help="Two or more run folders.")],
    figure: Annotated[Path, typer.Option("--out", help="The learning-curve PNG to write.")] = Path("compare.png"),
    as_json: Annotated[bool, typer.Option("--json", help="Print the comparison as JSON.")] = False,
) -> None:
    """The config keys that differ, the final metrics side by side, and the learning curves in one PNG."""
    from dlx import compare

    report = compare.compare(paths, figure)
    if as_json:
        print(json.dumps(report, indent=2))
    else:
        compare.print_report(out, report)


@runs_app.command("rm")
@user_errors
def runs_rm(
    path: Annotated[Path, typer.Argument(help="A run folder (or a cross-validation's parent folder).")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Delete without asking.")] = False,
) -> None:
    """Delete a run folder, after asking; refuses any folder that is not a dlx run."""
    from dlx import runs_table

    runs_table.removable(path)
    if not yes and not typer.confirm(f"delete {path} and everything in it?"):
        err.print("nothing deleted", highlight=False)
        raise typer.Exit(1)
    runs_table.remove(path)
    out.print(f"deleted {path}", highlight=False, soft_wrap=True)


from dlx.data import commands as data_commands  # noqa: E402  (after user_errors, which wraps its commands)

app.add_typer(data_commands.app, name="data", rich_help_panel=INSPECT_PANEL)
data_commands.app.command("fetch")(user_errors(data_commands.fetch))
data_commands.app.command("shard")(user_errors(data_commands.shard))


@app.command(rich_help_panel=RUN_PANEL)
@user_errors
def explain(
    run: Annotated[Path, typer.Argument(help="A run folder of a classifier, e.g. runs/digits_cnn.")],
    method: Annotated[list[str], typer.Option("--method", "-m", help="saliency, smoothgrad, gradcam, occlusion, lime, "
                                              "classviz, filters, attention or all (repeatable).")] = ["all"],  # noqa: B006
    images: Annotated[Optional[list[Path]], typer.Option("--input", "-i", help="An image file (repeatable); resized and "
                                                        "normalised like the run's data.")] = None,
    index: Annotated[Optional[list[int]], typer.Option("--index", help="A row of --split (repeatable).")] = None,
    split: Annotated[str, typer.Option(help="train, val or test: where --index looks.")] = "test",
    target: Annotated[str, typer.Option(help="The class to explain: an index, a class name or 'predicted'.")] = "predicted",
    layer: Annotated[Optional[str], typer.Option(help="GradCAM's layer, a module path (default: the last conv layer).")] = None,
    settings: Annotated[Optional[list[str]], typer.Option("--set", "-s", metavar="METHOD.KEY=VALUE",
                                                          help="A method's setting, e.g. lime.samples=500 (repeatable).")] = None,
    out_dir: Annotated[Optional[Path], typer.Option("--out", help="Output folder (default: RUN/explanations).")] = None,
    smooth: Annotated[Optional[float], typer.Option(min=0.0, help="Smoothing of the rescaled maps, in pixels "
                                                    "(default: 1/16 of the image side).")] = None,
    checkpoint: Annotated[str, typer.Option(help="best or last.")] = "best",
    step: Annotated[Optional[int], typer.Option(help="A model with a prediction per step: the step explained "
                                                "(default: the last).")] = None,
    device: Device = None,
    list_layers: Annotated[bool, typer.Option("--list-layers", help="Print the layers with their output shapes and exit.")] = False,
) -> None:
    """Why a trained classifier decided as it did: saliency, SmoothGrad, GradCAM, occlusion, LIME, class and filter
    visualisations, attention, as PNG panels, .npy arrays, explanation.json and TensorBoard images."""
    from dlx.explain import run as explaining

    if list_layers:
        found, default = explaining.list_layers(run, checkpoint, device)
        marks = ["default" if item.name == default else ("yes" if item.is_feature_map else "") for item in found]
        out.print(tables.table([tables.Column(c, text=True) for c in ("layer", "type", "output shape", "gradcam")],
                               [(item.name, item.kind, item.shape, mark) for item, mark in zip(found, marks)],
                               f"{run}: layers for --layer"))
        return
    for folder in explaining.explain(run, method, files=images or [], indices=index or [], split=split, target=target,
                                     settings=settings or [], layer=layer, out=out_dir, which=checkpoint, device=device,
                                     smooth=smooth, step=step,
                                     note=lambda line: err.print(f"note: {escape(line)}", highlight=False, soft_wrap=True)):
        out.print(f"{folder}", highlight=False)


TABLE_ROWS = 50  # predictions of more inputs go to a file, not the terminal


@app.command(rich_help_panel=RUN_PANEL)
@user_errors
def predict(
    runs_and_inputs: Annotated[list[str], typer.Argument(
        metavar="RUN [RUN...] INPUT...", help="A run folder (several with --ensemble), then image files, folders, globs, "
        "CSV tables with the run's columns or .npz/.pt arrays.")],
    out_file: Annotated[Optional[Path], typer.Option("--out", help="Write the predictions to this .csv or .jsonl "
                                                      f"(default: a table for up to {TABLE_ROWS} inputs, else predictions.csv).")] = None,
    top_k: Annotated[int, typer.Option(help="Classifiers: list the K most probable classes of each input.")] = 1,
    batch_size: Annotated[Optional[int], typer.Option(help="Inputs per batch (default: the run's train.eval_batch_size).")] = None,
    checkpoint: Annotated[str, typer.Option(help="best or last.")] = "best",
    threshold: Annotated[Optional[float], typer.Option(
        help="Two-class runs: answer class 1 when its probability reaches this (default 0.5).")] = None,
    reject_margin: Annotated[Optional[float], typer.Option(
        help="The reject option: answer 'rejected' when the two largest probabilities differ by less than this.")] = None,
    ensemble: Annotated[Optional[str], typer.Option(help="Predict with the runs as a committee: vote or mean.")] = None,
    skip_bad: Annotated[bool, typer.Option("--skip-bad", help="List unreadable inputs and predict the rest.")] = False,
    device: Device = None,
) -> None:
    """A trained run's answers on new inputs: the class, its probability and the top k, or the predicted values;
    inputs are read, resized and standardised exactly as the run's data was."""
    from dlx import api
    from dlx.predict import output

    runs, inputs = api.split_runs(runs_and_inputs)
    options = api.PredictOptions(checkpoint=checkpoint, top_k=top_k, batch_size=batch_size, threshold=threshold,
                                 reject_margin=reject_margin, ensemble=ensemble, skip_bad=skip_bad, device=device)
    with _progress() as on_batch:
        result = api.predict(runs, inputs, options, out=out_file, on_batch=on_batch, keep_up_to=TABLE_ROWS)
    for name, reason in result.skipped:
        err.print(f"[yellow]skipped[/] {escape(name)}: {escape(reason)}", highlight=False, soft_wrap=True)
    if result.written is not None:
        err.print(f"wrote {result.count} predictions to {result.written}", highlight=False, soft_wrap=True)
    else:
        out.print(output.table(result.rows, f"{runs[0] if len(runs) == 1 else f'committee ({ensemble})'}: "
                                            f"{result.count} predictions"))


@contextlib.contextmanager
def _progress():
    """A progress bar on stderr (when it is a terminal) that follows on_batch(done, total); gone when done."""
    from rich.progress import Progress

    with Progress(console=err, transient=True, disable=not err.is_terminal) as progress:
        task = progress.add_task("predicting", total=None)
        yield lambda done, total: progress.update(task, completed=done, total=total)


@app.command(rich_help_panel=RUN_PANEL)
@user_errors
def export(
    run: Annotated[Path, typer.Argument(help="A run folder, e.g. runs/digits_cnn.")],
    format: Annotated[str, typer.Option("--format", help="torchscript or onnx.")] = "torchscript",
    out_file: Annotated[Optional[Path], typer.Option("--out", help="The file to write (default: RUN/export/model.pt "
                                                      "or model.onnx).")] = None,
    check: Annotated[bool, typer.Option("--check", help="Run the file on the test split and compare with dlx's own "
                                        "predictions; fails above a difference of 1e-4.")] = False,
    checkpoint: Annotated[str, typer.Option(help="best or last.")] = "best",
) -> None:
    """A file that runs without dlx (TorchScript or ONNX): raw pixels in [0, 255] or raw feature values in,
    probabilities or values out, any batch size; class names, input shape, run and config inside."""
    from dlx import export as exporting
    from dlx.errors import DlxError

    written = exporting.export(run, format, out_file, checkpoint)
    out.print(f"wrote {written}", highlight=False, soft_wrap=True)
    if check:
        result = exporting.check(run, written, format, checkpoint)
        same = "" if result.same_class is None else f"; identical predicted classes: {result.same_class:.2%}"
        out.print(f"check on {result.examples} test examples: largest absolute difference {result.max_difference:.3g}"
                  f"{same}", highlight=False)
        if not result.passed:
            raise DlxError(f"--check: the exported file differs from dlx by {result.max_difference:.3g}, more than "
                           f"{exporting.TOLERANCE:g}")


def _from_command_line(context: typer.Context, name: str) -> bool:
    """Whether the user typed parameter `name` (typer's click, vendored, names where it came from)."""
    source = context.get_parameter_source(name)
    return source is not None and source.name == "COMMANDLINE"


@app.command(rich_help_panel=RUN_PANEL)
@user_errors
def generate(
    context: typer.Context,
    run: Annotated[Path, typer.Argument(help="A language-model run folder, e.g. runs/shakespeare_char_gpt, an "
                                        "encoder-decoder's, e.g. runs/reverse_seq2seq_attention, or a VAE's or "
                                        "GAN's, e.g. runs/digits_vae.")],
    prompt: Annotated[Optional[str], typer.Option(help="Text to continue (default: a newline).")] = None,
    inputs: Annotated[Optional[list[str]], typer.Option("--input", help="Text an encoder-decoder translates "
                                                        "(repeatable); its attention goes to <run name>-attention.png.")] = None,
    prompt_file: Annotated[Optional[Path], typer.Option(help="Read the prompt from this UTF-8 file.")] = None,
    max_new_tokens: Annotated[int, typer.Option(min=1, help="Characters to generate.")] = 500,
    temperature: Annotated[float, typer.Option(min=0.0, help="Sharpens (<1) or flattens (>1) the distribution; "
                                               "0 is greedy.")] = 1.0,
    top_k: Annotated[Optional[int], typer.Option(min=1, help="Sample among the K most likely characters only.")] = None,
    top_p: Annotated[Optional[float], typer.Option(min=0.0, max=1.0, help="Sample among the fewest most likely "
                                                   "characters whose probabilities sum to P (nucleus).")] = None,
    strategy: Annotated[Optional[Literal["sample", "greedy", "beam"]], typer.Option(
        help="sample, greedy or beam (default: sample; greedy for a translation).")] = None,
    beam_width: Annotated[int, typer.Option(min=1, help="Beams kept by --strategy beam.")] = 4,
    num_samples: Annotated[int, typer.Option(min=1, help="Independent samples (an image run's grid: 64).")] = 1,
    seed: Annotated[Optional[int], typer.Option(min=0, max=2**63 - 1, help="Fixes the samples (default: a fresh seed, "
                                                "printed).")] = None,
    stream: Annotated[bool, typer.Option(help="Print characters as they are generated.")] = True,
    out_file: Annotated[Optional[Path], typer.Option(
        "--out", help="Also write the text to this file; an image run's PNG (default: RUN-samples.png or "
                      "RUN-interpolation.png).")] = None,
    interpolate: Annotated[Optional[tuple[int, int]], typer.Option(
        metavar="A B", help="A VAE run: decode the line between test images A and B's codes.")] = None,
    checkpoint: Annotated[Literal["best", "last"], typer.Option(help="best or last.")] = "best",
    threads: Annotated[Optional[str], typer.Option(help="CPU threads: a number or auto (chosen from the free cores "
                                                   "and the model's work; default: the count the run trained with).")] = None,
) -> None:
    """Sample text from a trained language model (temperature, top-k, top-p, greedy or beam search), translate --input
    with an encoder-decoder (greedy or beam search) and draw its attention, or draw a grid of a VAE's or GAN's
    samples, or a VAE's interpolation between two test images."""
    from dlx import threads as cpu_threads
    from dlx.errors import DlxError
    from dlx.generate import images
    from dlx.generate import run as generation

    given = {name for name in context.params if _from_command_line(context, name)}
    if images.draws_images(run):
        if text_only := sorted(given - {"run", "num_samples", "seed", "out_file", "checkpoint", "interpolate"}):
            option = next(p.opts[0] for p in context.command.params if p.name == text_only[0])  # --input, not --inputs
            fail(f"{option} applies to text generation; {run} draws images")
        options = images.Options(num_samples if "num_samples" in given else images.GRID, seed, interpolate, out_file,
                                 checkpoint)
        written = images.generate(run, options,
                                  lambda note: err.print(note, style="dim", highlight=False, soft_wrap=True))
        err.print(f"wrote {written}", highlight=False, soft_wrap=True)
        return
    if interpolate is not None:
        fail(f"--interpolate draws a VAE's images; {run} is not a VAE's run")

    if prompt is not None and prompt_file is not None:
        fail("give --prompt or --prompt-file, not both")
    if prompt_file is not None:
        try:
            prompt = prompt_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise DlxError(f"--prompt-file {prompt_file}: cannot read it as UTF-8 text ({e})") from None
    if out_file is not None:  # before the samples, which take a while and stream
        from dlx.run.records import check_output_file

        check_output_file(out_file)

    def write(text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()

    options = generation.Options(prompt=prompt, max_new_tokens=max_new_tokens, temperature=temperature, top_k=top_k,
                                 top_p=top_p, strategy=strategy, beam_width=beam_width, num_samples=num_samples,
                                 seed=seed, checkpoint=checkpoint, inputs=inputs or [],
                                 threads=None if threads is None else cpu_threads.parse(threads))
    generation.check(options)  # the counts before the run is read: a billion characters is refused wherever asked
    from dlx.generate import translate

    generation.refuse_unread(given, translate.translates(run), strategy)
    samples = generation.generate(run, options, write if stream else (lambda text: None),
                                  lambda note: err.print(note, style="dim", highlight=False, soft_wrap=True))
    if not stream:
        write("\n\n".join(s.text for s in samples))
    write("\n")
    for s in samples:
        if s.log_prob is not None:
            err.print(f"log-probability of the continuation: {s.log_prob:.4f} (beam width {beam_width})", highlight=False)
        if s.figure is not None:
            err.print(f"wrote {s.figure}", highlight=False, soft_wrap=True)
    if out_file is not None:
        from dlx.atomic import write_atomic

        write_atomic(out_file, ("\n\n".join(s.text for s in samples) + "\n").encode())
        err.print(f"wrote {out_file}", highlight=False)


@app.command(rich_help_panel=RUN_PANEL)
@user_errors
def sweep(
    sweep_file: Annotated[Path, typer.Argument(metavar="SWEEP.yaml", help="A sweep file, e.g. experiments/digits_mlp_sweep.yaml.")],
    trials: Annotated[Optional[int], typer.Option(min=1, help="Trials in total (default: the sweep file's).")] = None,
    epochs: Annotated[Optional[int], typer.Option(min=1, help="Epochs per trial (default: the sweep file's).")] = None,
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, help="Worker processes on this machine; they share its CPU threads.")] = 1,
    storage: Annotated[Optional[str], typer.Option(help="A database URL shared by many machines, e.g. postgresql://user:pw@host/db "
                                                   "(default: a journal file in runs/<study>/).")] = None,
    study: Annotated[Optional[str], typer.Option(help="The study's name and runs/ folder (default: the sweep's name).")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue a stopped sweep; trials its workers left unfinished run again.")] = False,
    timeout: Annotated[Optional[float], typer.Option(min=0, help="Start no new trial after this many seconds.")] = None,
    status: Annotated[bool, typer.Option("--status", help="Only report: the trial table, importances, best.yaml and plots.")] = False,
    runs_dir: RunsDir = Path("runs"),
) -> None:
    """Hyperparameter search over any config values with Optuna: each trial is an ordinary run."""
    from dlx import sweep as sweeps

    if not status:
        sweeps.warm_up()
    from dlx.sweep.engine import sweep as run_sweep

    run_sweep(sweep_file, trials=trials, jobs=jobs, storage=storage, study_name=study, resume=resume, timeout=timeout,
              status=status, runs_dir=runs_dir, epochs=epochs, console=out)


def run() -> None:
    """The `dlx` console script: Typer's own usage errors (a bad option value) also end in one line, exit 2."""
    from dlx.allocator import keep_freed_blocks

    keep_freed_blocks()  # the command's process is dlx's own: its tensors reuse freed memory
    try:
        code = app(prog_name="dlx", standalone_mode=False)
    except typer.Abort:
        sys.exit(130)
    except typer.TyperException as e:  # click's usage errors, as Typer carries them
        message = e.format_message() if hasattr(e, "format_message") else str(e)
        err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
        sys.exit(2)
    sys.exit(code if isinstance(code, int) else 0)
