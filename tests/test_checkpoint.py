import os
import pickle

import pytest
import torch

from dlx.errors import DlxError
from dlx.run import checkpoint


def weights(w: torch.Tensor) -> checkpoint.Checkpoint:
    """A checkpoint holding one weight tensor."""
    return checkpoint.Checkpoint(config={}, spec={"in_shape": (1,), "task": "regression"}, model={"w": w},
                                 loop={"step": 0, "epoch": 0, "batch": 0})


def test_round_trip_keeps_every_tensor_and_value(tmp_path):
    state = checkpoint.Checkpoint(config={"name": "r"}, spec={"in_shape": (3,), "task": "regression"},
                                  model={"w": torch.randn(3, 4)}, loop={"step": 7, "epoch": 1, "batch": 0, "best": None},
                                  rng={"torch": torch.get_rng_state()}, optimizers={"model": {"state": {}}})
    path = tmp_path / "last.pt"
    checkpoint.save(state, path)
    loaded = checkpoint.load(path)
    assert torch.equal(loaded.model["w"], state.model["w"]) and loaded.loop == state.loop and loaded.step == 7
    assert torch.equal(loaded.rng["torch"], state.rng["torch"]) and loaded.optimizers == state.optimizers


class RunsCode:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


@pytest.mark.parametrize("content", [
    lambda good: good[: len(good) // 2],  # truncated
    lambda good: os.urandom(2048),  # random bytes
    lambda good: b"",  # empty
    lambda good: pickle.dumps(RunsCode()),  # a plain pickle that would run a command
], ids=["truncated", "random", "empty", "hostile-pickle"])
def test_bad_files_are_refused_with_one_clear_line(tmp_path, monkeypatch, content):
    monkeypatch.chdir(tmp_path)
    good_path = tmp_path / "good.pt"
    checkpoint.save(weights(torch.ones(100)), good_path)
    bad = tmp_path / "bad.pt"
    bad.write_bytes(content(good_path.read_bytes()))
    with pytest.raises(DlxError, match="bad.pt: not a") as e:
        checkpoint.load(bad)
    assert "\n" not in str(e.value)
    assert not (tmp_path / "pwned").exists()


def test_a_torch_file_that_is_not_a_dlx_checkpoint_is_refused(tmp_path):
    torch.save({"w": torch.ones(2)}, tmp_path / "foreign.pt")
    with pytest.raises(DlxError, match="not a dlx checkpoint"):
        checkpoint.load(tmp_path / "foreign.pt")


def test_a_failed_write_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    checkpoint.save(weights(torch.tensor(1)), path)

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError):
        checkpoint.save(weights(torch.tensor(2)), path)
    assert checkpoint.load(path).model["w"].item() == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temporary file left behind


def test_the_background_writer_saves_snapshots_not_live_tensors(tmp_path):
    live = torch.zeros(3)
    writer = checkpoint.CheckpointWriter()
    writer.submit(tmp_path / "a.pt", weights(live))
    live += 1  # training goes on while the write is pending
    writer.close()
    assert torch.equal(checkpoint.load(tmp_path / "a.pt").model["w"], torch.zeros(3))


def test_the_background_writer_reports_a_failed_write(tmp_path):
    writer = checkpoint.CheckpointWriter()
    writer.submit(tmp_path / "missing-folder" / "a.pt", weights(torch.zeros(1)))
    with pytest.raises(DlxError, match="could not write a checkpoint"):
        writer.close()


def test_a_checkpoint_saved_with_a_wrappers_key_prefixes_still_restores(tmp_path, fast_config):
    from dlx.run.trained import open_trained
    from dlx.train import loop

    run, _ = loop.start(fast_config("train.epochs=1"), tmp_path, quiet=True)
    path = run.checkpoint("best")
    state = checkpoint.load(path)
    plain = state.model
    state.model = {f"_orig_mod.{k}": v for k, v in plain.items()}  # as torch.compile's wrapper names them
    checkpoint.save(state, path)
    restored = open_trained(run.path).model.state_dict()
    assert all(torch.equal(restored[k], v) for k, v in plain.items())
