"""An outside tester's hunt on the commands after training (predict, export, generate, evaluate, explain, runs, list):
every mistake a user can make ends in one line and exit code 2, a typed value is never silently dropped, and no
command's output replaces what a run already holds."""
from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from dlx.cli import app
from tests.conftest import EXPERIMENTS, TINY_MLP

pytestmark = pytest.mark.usefixtures("one_thread")


def dlx(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def one_error_line(result, message: str = "") -> str:
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert message in result.stderr, result.stderr
    return result.stderr


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def runs(tmp_path_factory, one_thread) -> dict[str, Path]:
    """One short run of each kind the commands after training take: a classifier, a VAE, an encoder-decoder with
    attention and a character language model."""
    from dlx.config import load, validate
    from dlx.train import loop

    root = tmp_path_factory.mktemp("command-hunt")
    (root / "t.txt").write_text("the cat sat on the mat.\n" * 40)
    quiet = {"quiet": True, "console": Console(file=io.StringIO())}
    configs = {
        "classifier": load(EXPERIMENTS / "digits_mlp.yaml", [*TINY_MLP, "train.epochs=1", "name=classifier"]),
        "vae": load(EXPERIMENTS / "digits_vae.yaml", ["train.epochs=1", "model.sizes=16", "train.device=cpu",
                                                      "name=vae"]),
        "seq2seq": load(EXPERIMENTS / "reverse_seq2seq_attention.yaml", [
            "train.epochs=1", "data.n=200", "model.hidden=8", "model.embedding=4", "train.device=cpu",
            "name=seq2seq"]),
        "lm": validate({"name": "lm", "data": {"name": "text", "path": str(root / "t.txt"), "block_size": 8,
                                               "steps_per_epoch": 2, "eval_windows": 4, "split": [0.8, 0.1, 0.1]},
                        "model": {"name": "char_lstm", "hidden": 8, "layers": 1},
                        "train": {"epochs": 1, "batch_size": 4, "device": "cpu"}}),
    }
    return {kind: loop.start(config, root / "runs", **quiet)[0].path for kind, config in configs.items()}


@pytest.fixture(scope="module")
def digit(tmp_path_factory) -> Path:
    from PIL import Image

    path = tmp_path_factory.mktemp("inputs") / "digit.png"
    Image.new("L", (8, 8), 128).save(path)
    return path


# --- no command's --out replaces a run's record --------------------------------------------------------------------

RECORD_TARGETS = {
    "predict onto metrics.jsonl": ("classifier", "metrics.jsonl", ["predict", "{run}", "{digit}"]),
    "export onto the best checkpoint": ("classifier", "checkpoints/best.pt", ["export", "{run}"]),
    "export onto another run's last checkpoint": ("vae", "checkpoints/last.pt", ["export", "{classifier}"]),
    "generated text onto config.yaml": ("lm", "config.yaml", ["generate", "{run}", "--max-new-tokens", "3",
                                                              "--seed", "0"]),
    "generated text onto summary.json": ("lm", "summary.json", ["generate", "{run}", "--max-new-tokens", "3",
                                                                "--seed", "0"]),
    "a translation onto vocab.json": ("seq2seq", "vocab.json", ["generate", "{run}", "--input", "abc"]),
    "a VAE's grid onto its learning curves": ("vae", "learning_curves.png", ["generate", "{run}", "--seed", "0"]),
}


@pytest.mark.parametrize("kind, record, command", RECORD_TARGETS.values(), ids=RECORD_TARGETS)
def test_an_out_onto_a_runs_record_is_refused_and_the_run_is_unchanged(runs, digit, tmp_path, monkeypatch, kind,
                                                                       record, command):
    monkeypatch.chdir(tmp_path)  # a translation's heat map goes to the current folder
    before = snapshot(runs[kind])
    args = [a.format(run=runs[kind], classifier=runs["classifier"], digit=digit) for a in command]
    one_error_line(dlx(*args, "--out", runs[kind] / record), "own record")
    assert snapshot(runs[kind]) == before


@pytest.mark.parametrize("command", [["export", "{classifier}"], ["generate", "{lm}", "--max-new-tokens", "3"],
                                     ["generate", "{seq2seq}", "--input", "abc"], ["generate", "{vae}"]])
def test_an_out_that_is_a_folder_is_refused_before_any_work(runs, tmp_path, monkeypatch, command):
    monkeypatch.chdir(tmp_path)
    one_error_line(dlx(*[a.format(**runs) for a in command], "--out", tmp_path), "a folder; give a file name")
    assert list(tmp_path.iterdir()) == []  # no heat map, no samples were made first


def test_a_new_file_in_a_run_folder_and_a_rerun_export_still_work(runs, digit):
    assert dlx("predict", runs["classifier"], digit, "--out", runs["classifier"] / "mine.csv").exit_code == 0
    for _ in range(2):  # the default export file is the command's own, replaced by a second export
        assert dlx("export", runs["classifier"]).exit_code == 0


# --- an export's file name says its format -------------------------------------------------------------------------

@pytest.mark.parametrize("format, name, message", [("torchscript", "model.onnx", "name it .pt or give --format onnx"),
                                                   ("onnx", "model.pt", "name it .onnx or give --format torchscript")])
def test_an_export_named_for_the_other_format_is_refused(runs, tmp_path, format, name, message):
    one_error_line(dlx("export", runs["classifier"], "--format", format, "--out", tmp_path / name), message)
    assert not (tmp_path / name).exists()


# --- a long translation's heat map stays a picture a machine can draw ----------------------------------------------

def test_a_long_input_draws_a_bounded_heat_map(runs, tmp_path, monkeypatch):
    from PIL import Image

    monkeypatch.chdir(tmp_path)
    result = dlx("generate", runs["seq2seq"], "--input", "a" * 2000, "--max-new-tokens", "200", "--no-stream")
    assert result.exit_code == 0, result.output
    width, height = Image.open(tmp_path / "seq2seq-attention.png").size
    assert width <= 4000 and height <= 4000  # 2,000 letters at 0.3 inch each drew 72,000 pixels wide


# --- generate reads every option typed, or refuses it ---------------------------------------------------------------

UNREAD = {
    "a translation's temperature": ("seq2seq", ["--input", "abc", "--temperature", "0.5"], "--temperature"),
    "a translation's top-k": ("seq2seq", ["--input", "abc", "--top-k", "2"], "--top-k"),
    "a translation's top-p": ("seq2seq", ["--input", "abc", "--top-p", "0.5"], "--top-p"),
    "a translation's samples": ("seq2seq", ["--input", "abc", "--num-samples", "3"], "--num-samples"),
    "a greedy translation's beam width": ("seq2seq", ["--input", "abc", "--beam-width", "2"], "--beam-width"),
    "a greedy continuation's temperature": ("lm", ["--strategy", "greedy", "--temperature", "0.5"], "--temperature"),
    "a beam search's top-k": ("lm", ["--strategy", "beam", "--top-k", "3"], "--top-k"),
    "a beam search's top-p": ("lm", ["--strategy", "beam", "--top-p", "0.9"], "--top-p"),
    "a sample's beam width": ("lm", ["--beam-width", "3"], "--beam-width"),
}


@pytest.mark.parametrize("kind, args, option", UNREAD.values(), ids=UNREAD)
def test_an_option_generate_would_not_read_is_refused_before_any_work(runs, tmp_path, monkeypatch, kind, args, option):
    monkeypatch.chdir(tmp_path)
    one_error_line(dlx("generate", runs[kind], "--max-new-tokens", "3", *args), f"{option} is not read when")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("kind, args", [
    ("seq2seq", ["--input", "abc", "--strategy", "beam", "--beam-width", "2"]),
    ("lm", ["--strategy", "beam", "--beam-width", "2"]),
    ("lm", ["--temperature", "0.8", "--top-k", "3", "--top-p", "0.9", "--num-samples", "2"]),
    ("lm", ["--strategy", "greedy", "--num-samples", "2"]),
])
def test_options_the_strategy_reads_still_work(runs, tmp_path, monkeypatch, kind, args):
    monkeypatch.chdir(tmp_path)
    result = dlx("generate", runs[kind], "--max-new-tokens", "3", "--seed", "0", *args)
    assert result.exit_code == 0, result.output


# --- evaluate reads every option typed, or refuses it ---------------------------------------------------------------

EVALUATE_UNREAD = {
    "a classifier's word map": ("classifier", ["--map", "tsne"], "--map take a run of word vectors"),
    "a classifier's word map by an unknown method": ("classifier", ["--map", "umap"], "--map take a run of word"),
    "a translation's word map": ("seq2seq", ["--map", "pca"], "--map take a run of word vectors"),
    "a language model's probe": ("lm", ["--probe", "cat"], "--probe, --analogies and --map take"),
    "a translation's judge": ("seq2seq", ["--judge", "{classifier}"], "--judge applies to a GAN's or a VAE's run"),
    "a VAE's largest losses": ("vae", ["--top-losses", "3"], "--top-losses applies to runs of the supervised"),
    "a translation's threshold": ("seq2seq", ["--threshold", "0.3"], "--threshold applies to runs of the supervised"),
}


@pytest.mark.parametrize("kind, args, message", EVALUATE_UNREAD.values(), ids=EVALUATE_UNREAD)
def test_an_option_evaluate_would_not_read_is_refused(runs, tmp_path, kind, args, message):
    args = [a.format(**runs) for a in args]
    one_error_line(dlx("evaluate", runs[kind], *args, "--out", tmp_path / "out"), message)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", [["evaluate", "{classifier}"], ["explain", "{classifier}", "-m", "saliency",
                                                                     "--index", "0"]])
def test_an_output_folder_that_is_a_file_is_refused_before_any_work(runs, tmp_path, command):
    taken = tmp_path / "notes.txt"
    taken.write_text("mine")
    one_error_line(dlx(*[a.format(**runs) for a in command], "--out", taken), "a file; give a folder")
    assert taken.read_text() == "mine"


# --- what held: the strongest cases tried, kept so that they keep holding -------------------------------------------

HELD = {
    "predict: an empty image": (["predict", "{classifier}", "{empty}"], "cannot read it as an image"),
    "predict: a folder without images": (["predict", "{classifier}", "{folder}"], "a folder without image files"),
    "predict: a GAN-like run of another objective": (["predict", "{vae}", "{digit}"], "needs a run trained with"),
    "predict: a language model": (["predict", "{lm}", "{digit}"], "is a language model"),
    "predict: a committee of different data": (["predict", "{classifier}", "{seq2seq}", "{digit}", "--ensemble",
                                                "vote"], ""),
    "predict: predictions to a text file": (["predict", "{classifier}", "{digit}", "--out", "{folder}/p.txt"],
                                            "write predictions to a .csv or a .jsonl file"),
    "export: a VAE": (["export", "{vae}"], "needs a run trained with objective 'supervised'"),
    "generate: a classifier": (["generate", "{classifier}"], "is not a language-model run"),
    "generate: a VAE's interpolation past the split": (["generate", "{vae}", "--interpolate", "0", "100000"],
                                                       "the test split has"),
    "generate: a VAE's temperature": (["generate", "{vae}", "--temperature", "0.5"], "applies to text generation"),
    "generate: a translation of unknown letters": (["generate", "{seq2seq}", "--input", "ABC"],
                                                   "not in the model's vocabulary"),
    "evaluate: a split by another name": (["evaluate", "{classifier}", "--split", "TEST"], "--split 'TEST'"),
    "evaluate: a model setting": (["evaluate", "{classifier}", "--set", "model.sizes=8"], "only data.* settings"),
    "evaluate: a classifier as judged": (["evaluate", "{classifier}", "--judge", "{classifier}"], "draws no samples"),
    "evaluate: a judge of other data": (["evaluate", "{vae}", "--judge", "{lm}"], "eval.judge"),
    "explain: a row past the split": (["explain", "{classifier}", "-m", "saliency", "--index", "100000"],
                                      "the test split has"),
    "explain: a setting of a method not run": (["explain", "{classifier}", "-m", "saliency", "--index", "0", "--set",
                                                "lime.samples=5"], "which is not among the methods run"),
    "explain: a VAE": (["explain", "{vae}", "-m", "saliency", "--index", "0"], "needs a run trained with"),
}


@pytest.mark.parametrize("command, message", HELD.values(), ids=HELD)
def test_a_mistake_with_a_trained_run_is_one_line(runs, digit, tmp_path, monkeypatch, command, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty.png").touch()
    (tmp_path / "folder").mkdir()
    args = [a.format(**runs, digit=digit, empty=tmp_path / "empty.png", folder=tmp_path / "folder") for a in command]
    one_error_line(dlx(*args), message)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.png", "folder"]


# --- figures named by --out: checked before the work, never over a run's record, no warning for a long title -------

FIGURE_COMMANDS = {
    "schedule": ["schedule", "{classifier}/config.yaml"],
    "lr-find": ["lr-find", "{classifier}/config.yaml", "--steps", "10"],
    "runs compare": ["runs", "compare", "{classifier}", "{vae}"],
    "a VAE's grid": ["generate", "{vae}"],
}


@pytest.mark.parametrize("command", FIGURE_COMMANDS.values(), ids=FIGURE_COMMANDS)
@pytest.mark.parametrize("out, message", [("{classifier}/learning_curves.png", "own record"),
                                          ("{tmp}/figure.csv", "matplotlib cannot write .csv files"),
                                          ("{tmp}", "a folder; give a file name")], ids=["record", "csv", "folder"])
def test_a_figure_out_that_cannot_be_written_is_refused_before_any_work(runs, tmp_path, monkeypatch, command, out,
                                                                        message):
    monkeypatch.chdir(tmp_path)
    before = snapshot(runs["classifier"])
    one_error_line(dlx(*[a.format(**runs) for a in command], "--out", out.format(**runs, tmp=tmp_path)), message)
    assert snapshot(runs["classifier"]) == before and list(tmp_path.iterdir()) == []


@pytest.mark.filterwarnings("error::UserWarning")
def test_runs_compare_of_different_kinds_prints_no_layout_warning(runs, tmp_path):
    result = dlx("runs", "compare", runs["classifier"], runs["vae"], runs["seq2seq"], "--out", tmp_path / "c.png")
    assert result.exit_code == 0, result.output
    assert "Warning" not in result.stderr and (tmp_path / "c.png").is_file()


# --- the runs table --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("args, message", [
    (["--filter", "foo"], "--filter 'foo': expected KEY=VALUE"),  # it said --set, an option runs does not take
    (["--filter", "model.name=["], "--filter 'model.name=[': '[' is not a valid value"),
    (["--sort", "test/nope"], "--sort 'test/nope': not a column or a logged metric"),
])
def test_a_bad_runs_table_option_names_itself_in_one_line(runs, args, message):
    one_error_line(dlx("runs", "--runs-dir", runs["classifier"].parent, *args), message)


def test_runs_dir_given_a_run_folder_says_so_rather_than_listing_nothing(runs):
    one_error_line(dlx("runs", "--runs-dir", runs["classifier"]),
                   f"a run folder; give the folder that holds the runs, e.g. --runs-dir {runs['classifier'].parent}")


# --- the Python API: a wrong argument is a DlxError naming it, never a TypeError from inside ------------------------

API_MISTAKES = {
    "train from None": (lambda r: __import__("dlx").train(None), "dlx.train: expected a path"),
    "train with a list of sets": (lambda r: __import__("dlx").train(EXPERIMENTS / "iris_mlp.yaml",
                                                                    set=["train.epochs=1"]), "set: expected a mapping"),
    "open_run of a number": (lambda r: __import__("dlx").open_run(3), "dlx.open_run: expected a path"),
    "predict None": (lambda r: r["classifier"].predict(None), "run.predict: expected a path or a list"),
    "predict with a misspelt option": (lambda r: r["classifier"].predict("x.png", topk=3), "did you mean 'top_k'"),
    "predict top_k 2.5": (lambda r: r["classifier"].predict("x.png", top_k=2.5), "top_k: input should be a valid"),
    "evaluate with an unknown option": (lambda r: r["classifier"].evaluate(foo=1), "unknown option 'foo'"),
    "evaluate top_losses 'x'": (lambda r: r["classifier"].evaluate(top_losses="x"), "top_losses: input should be"),
    "explain a list of methods": (lambda r: r["classifier"].explain([0], method=["saliency"]), "method: expected"),
    "explain rows and files mixed": (lambda r: r["classifier"].explain([0, "x.png"]), "expected a path"),
    "explain with an unknown option": (lambda r: r["classifier"].explain([0], foo=1), "unknown option 'foo'"),
    "generate 2.5 tokens": (lambda r: r["lm"].generate("t", max_new_tokens=2.5), "max_new_tokens: input should be"),
    "generate -1 tokens": (lambda r: r["lm"].generate("t", max_new_tokens=-1), "max_new_tokens=-1: give 1 or more"),
    "generate True tokens": (lambda r: r["lm"].generate("t", max_new_tokens=True), "where a number belongs"),
    "generate at temperature -1": (lambda r: r["lm"].generate("t", temperature=-1), "temperature=-1"),
    "generate top_k 0": (lambda r: r["lm"].generate("t", top_k=0), "top_k=0: give 1 or more"),
    "generate top_p 0": (lambda r: r["lm"].generate("t", top_p=0.0), "--top-p: give a probability above 0"),
    "generate by an unknown strategy": (lambda r: r["lm"].generate("t", strategy="x"), "strategy: input should be"),
    "generate from a number": (lambda r: r["lm"].generate(5), "prompt: input should be a valid string"),
    "sweep with an unknown option": (lambda r: __import__("dlx").sweep(EXPERIMENTS / "digits_mlp_sweep.yaml", foo=1),
                                     "dlx.sweep: unknown option 'foo'"),
}


@pytest.mark.parametrize("call, message", API_MISTAKES.values(), ids=API_MISTAKES)
def test_a_wrong_argument_to_the_python_api_is_one_dlx_error(runs, tmp_path, monkeypatch, call, message):
    import dlx

    monkeypatch.chdir(tmp_path)
    with pytest.raises(dlx.DlxError) as error:
        call({kind: dlx.open_run(path) for kind, path in runs.items()})
    assert message in str(error.value) and "\n" not in str(error.value)
    assert list(tmp_path.iterdir()) == []


def test_explain_given_one_file_name_explains_that_file_not_its_letters(runs, digit):
    import dlx

    assert len(dlx.open_run(runs["classifier"]).explain(str(digit))) == 1


@pytest.mark.parametrize("command, message", [
    (["generate", "{vae}", "--input", "abc"], "--input applies to text generation"),  # it said --inputs
    (["explain", "{classifier}", "-m", "saliency", "--index", "0", "--input", "{digit}"], "not both"),
])
def test_a_mistake_is_named_as_the_user_typed_it(runs, digit, tmp_path, monkeypatch, command, message):
    monkeypatch.chdir(tmp_path)
    one_error_line(dlx(*[a.format(**runs, digit=digit) for a in command]), message)
