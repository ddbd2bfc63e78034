"""The training loop: a plain PyTorch loop with checkpoints, early stopping and logging around it.

Everything is built from the config before the run folder exists, so a bad config leaves nothing
behind. The hot path per step is forward, backward, clip, step, schedule: logged values stay on the
device and are read only every `log_every` steps.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import io
import math
import os
import platform
import shutil
import signal
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

import dlx
from dlx import build, threads
from dlx.config import Config
from dlx.config import dump as dump_config
from dlx.config import load as load_config
from dlx.data.base import SEQ2SEQ
from dlx.data.sequence_pairs import vocab_json
from dlx.data.text import TextSplits
from dlx.errors import DlxError, did_you_mean
from dlx.judge import Judge, is_generative
from dlx.metrics import higher_is_better, logged_keys
from dlx.run import pretrained
from dlx.atomic import write_atomic
from dlx.run.folder import Run
from dlx.run import checkpoint, resuming
from dlx.run.checkpoint import Checkpoint
from dlx.schedules import RunLength
from dlx.train import figures, tensorboard
from dlx.train.distributed import World, device_for, join_world
from dlx.train.interrupts import Interrupted, catch_stop_signals
from dlx.train.progress import make_progress
from dlx.train.samples import sampler


OnEpoch = Callable[[int, dict[str, float]], None]
"""Called after each epoch's evaluation and checkpoints with (epoch, logged values); raising stops the run."""


@dataclass
class LoopState:
    """Where training is; saved in every checkpoint so a resumed run continues exactly."""

    step: int = 0  # optimizer steps taken
    epoch: int = 0  # epochs completed
    batch: int = 0  # batches taken in the current epoch
    best: float | None = None  # best value of the monitored metric so far
    best_epoch: int = 0
    bad_evals: int = 0  # evaluations since the monitored metric last improved
    finished: bool = False
    skipped: int = 0  # batches whose loss was NaN or infinite, left out (train.on_nan: skip)
    epoch_skipped: int = 0  # of them in the current epoch


def monitor_mode(config: Config) -> str:
    if config.train.mode != "auto":
        return config.train.mode
    return "max" if higher_is_better(config.train.monitor) else "min"


def check_monitor(config: Config, known: list[str]) -> None:
    if config.train.monitor not in known:
        raise DlxError(f"train.monitor: '{config.train.monitor}' is never logged{did_you_mean(config.train.monitor, known)}")


def improved(value: float, best: float | None, mode: str, min_delta: float) -> bool:
    if best is None:
        return not math.isnan(value)
    return value < best - min_delta if mode == "min" else value > best + min_delta


class Trainer:
    """One run's objects, built from its config; `fit` trains, `resume` continues from last.pt."""

    def __init__(self, config: Config, console: Console | None = None, quiet: bool = False,
                 on_epoch: OnEpoch | None = None, fresh: bool = True):
        self.world = join_world()
        if self.world.distributed and config.train.on_nan == "skip":  # a rank skipping its backward would hang the others
            raise DlxError("train.on_nan=skip trains in one process only; use train.on_nan=stop with --nproc")
        if not self.world.is_main:  # only rank 0 talks to the user
            console, quiet = Console(file=io.StringIO()), True
        self.config, self.console, self.quiet = config, console or Console(stderr=True), quiet
        self.on_epoch = on_epoch
        self.device = device_for(self.world, build.resolve_device(config.train.device))
        if isinstance(config.train.threads, int):  # a given count is set before anything is built; auto after
            torch.set_num_threads(config.train.threads)
        torch.manual_seed(config.seed)  # model initialisation and dropout
        self.data = build.splits(config, self.device)
        empty = [split for split in ("train", "val", "test") if not len(self.data.batches(split, 1))]
        if empty:  # training needs examples to learn from, to pick the best model on and to report on
            raise DlxError(f"data.split {list(config.data.split)} leaves the {' and '.join(empty)} split"
                           f"{'s' if len(empty) > 1 else ''} without examples; give each a larger share")
        self.spec = self.data.spec
        self.model = build.model(config, self.spec).to(self.device)
        # pretrained vectors, unless a checkpoint (not fresh: a resume) brings every weight
        pretrained.start_embedding(self.model, config.model, self.spec, load=fresh)
        self.loss_fn = build.loss(config, self.spec, self.model)
        self.objective = build.objective(config, self.spec, self.model, self.loss_fn)
        self.groups = self.objective.groups
        self.objective.check(self.data, config.model.name)  # a model that cannot serve: a user's mistake, a line
        self.objective.prepare(self.data)
        if config.train.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.networks = {group: self.objective.network(group) for group in self.groups}
        # what training calls: each group's network with DDP and/or torch.compile around it
        self.forward_nets = {group: self._wrapped(net) for group, net in self.networks.items()}
        # the average's own BN statistics are averaged too (use_buffers), so it can be evaluated as it is
        self.ema = torch.optim.swa_utils.AveragedModel(
            self.model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(config.train.ema), use_buffers=True,
        ) if config.train.ema else None
        self.autocast = self._autocast(config.train.precision)
        self.scaler = torch.amp.GradScaler(self.device.type) if config.train.precision == "fp16" else None
        self.sampler = (sampler(config.samples, self.spec, config.seed, self.model, self.data.standardizer)
                        if config.samples.every else None)
        self.judge = self._judge(config)
        logged = logged_keys(self.groups, self.objective.terms_logged, build.metric_names(config, self.spec),
                             self.objective.terms_trained, judged=self.judge is not None)
        check_monitor(config, logged)
        self.train_batches = self.objective.train_batches(self.data, config.train.batch_size)
        self.augment = build.augmenter(config, self.data, self.device)  # None when data.augment is all off
        self.length = RunLength.of(config.train, len(self.train_batches))
        self.total_steps = self.length.total
        self.optimizers = {g: build.optimizer(config, net, g) for g, net in self.networks.items()}
        self.schedules = {g: build.schedule(config, self.optimizers[g], self.length, g) for g in self.groups}
        self.data_order = torch.Generator().manual_seed(config.seed)  # shuffling, separate from the model's RNG
        self.epoch_order_state = self.data_order.get_state()
        self.state = LoopState()
        self.mode = monitor_mode(config)
        # per group's loss and per term the objective trains besides (a VAE's KL): the sum over this epoch's batches
        # up to the last log point, and the values since, summed at the next log point in one operation
        self.tracked = (*self.groups, *self.objective.terms_trained)
        self.epoch_loss = {k: torch.zeros((), device=self.device) for k in self.tracked}
        self.unlogged: dict[str, list[torch.Tensor]] = {k: [] for k in self.tracked}
        self.best_model: dict[str, Any] | None = None
        # last, so a build error is the only line printed; auto replaces itself by the count chosen
        self.config = threads.settle(config, self.model, self.data, self.console, self.objective.graph_input)

    def _judge(self, config: Config) -> Judge | None:
        if config.eval.judge is None:
            return None
        if not is_generative(self.model):
            raise DlxError(f"eval.judge: a judge labels a generative model's samples (mlp_gan, dcgan, mlp_vae), and "
                           f"'{config.model.name}' draws none; remove eval.judge")
        return Judge(config.eval.judge, self.spec, self.data.standardizer, self.device, config.eval.judge_samples,
                     config.train.eval_batch_size)

    def measure(self, split: str) -> dict[str, float]:
        """The objective's terms and metrics of the evaluated model on a split, and the judge's verdict on its samples."""
        values = self.objective.measure(self.eval_model, self.data.batches(split, self.config.train.eval_batch_size),
                                        self.metrics)
        if self.judge is not None:
            values.update(self.judge(self.eval_model, lambda: self.data[split][0], split))
        return values

    def _wrapped(self, model: torch.nn.Module) -> torch.nn.Module:
        if self.world.distributed:
            ids = [self.device.index] if self.device.type == "cuda" else None
            model = torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)
        return torch.compile(model) if self.config.train.compile else model

    def _autocast(self, precision: str):
        if precision == "fp32":
            return contextlib.nullcontext
        dtype = torch.bfloat16 if precision == "bf16" else torch.float16
        return lambda: torch.autocast(self.device.type, dtype=dtype)

    @functools.cached_property
    def metrics(self):
        """The validation metrics, built at the first evaluation: torchmetrics takes longer to import than torch,
        and the first training step need not wait for it (their names and tasks were checked at construction)."""
        return build.metrics(self.config, self.spec, self.device)

    @property
    def eval_model(self) -> torch.nn.Module:
        """What is evaluated and kept as best: the weights' moving average when train.ema is set."""
        return self.ema.module if self.ema is not None else self.model

    # --- checkpoints -------------------------------------------------------------------------------
    def checkpoint_state(self) -> Checkpoint:
        rng = {"torch": torch.get_rng_state(), "data": self.data_order.get_state(),
               "data_epoch_start": self.epoch_order_state}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        return Checkpoint(
            config=self.config.to_dict(), spec=asdict(self.spec), model=self.model.state_dict(), loop=asdict(self.state),
            optimizers={g: o.state_dict() for g, o in self.optimizers.items()},
            schedules={g: s.state_dict() for g, s in self.schedules.items()}, rng=rng,
            standardizer=self.data.standardizer.state_dict() if self.data.standardizer else None,
            ema=self.ema.state_dict() if self.ema is not None else None,
            scaler=self.scaler.state_dict() if self.scaler is not None else None,
            losses=dict(self.epoch_loss), unlogged={k: self._unlogged_tensor(k) for k in self.tracked},
        )

    def restore(self, last: Checkpoint, best: Checkpoint | None) -> None:
        try:
            self.model.load_state_dict(checkpoint.plain_keys(last.model))
            if self.ema is not None and last.ema:
                self.ema.load_state_dict(last.ema)
            if self.scaler is not None and last.scaler:
                self.scaler.load_state_dict(last.scaler)
            for group in self.groups:
                self.optimizers[group].load_state_dict(last.optimizers[group])
                self.schedules[group].load_state_dict(last.schedules[group])
            for key in self.tracked:
                self.epoch_loss[key] = last.losses[key].to(self.device)
                self.unlogged[key] = list(last.unlogged.get(key, torch.zeros(0)).to(self.device).unbind())
            self.state = LoopState(**last.loop)
            torch.set_rng_state(last.rng["torch"])
            if "cuda" in last.rng and self.device.type == "cuda":
                torch.cuda.set_rng_state(last.rng["cuda"], self.device)
            self.data_order.set_state(last.rng["data"])
            self.epoch_order_state = last.rng["data_epoch_start"]
        except (KeyError, RuntimeError, TypeError, ValueError, AttributeError) as e:
            raise DlxError(f"the checkpoint does not match this run's model or optimizer ({str(e).splitlines()[0]})") from None
        self.best_model = checkpoint.plain_keys(best.model) if best else None

    # --- the loop ----------------------------------------------------------------------------------
    def fit(self, run: Run) -> dict[str, Any]:
        """Train until the last epoch or early stopping; returns the summary written to summary.json."""
        cfg = self.config.train
        started = time.perf_counter()
        self.deadline = started + 60 * cfg.max_minutes if cfg.max_minutes else math.inf
        progress = make_progress(self.console, self.quiet, self.total_steps, cfg.epochs, self.state.step)
        self.checkpoints = checkpoint.RunCheckpoints(run.checkpoint("best"), run.checkpoint("last"),
                                                     cfg.checkpoint_seconds, self.state.step)
        hint = f"resume with: dlx train --resume {run.path}"
        try:
            with catch_stop_signals() as stop:
                while self.state.epoch < cfg.epochs and not self.state.finished:
                    epoch_started, first_batch = time.perf_counter(), self.state.batch
                    if first_batch == 0:
                        self.epoch_order_state = self.data_order.get_state()
                    else:
                        self.data_order.set_state(self.epoch_order_state)  # replay this epoch's order, then skip
                    signum = self._train_epoch(run, progress, stop)
                    if signum is not None:
                        self.checkpoints.save_last(self.checkpoint_state, self.state.step, force=True)
                        raise Interrupted(signum, hint)
                    self._end_epoch(run, progress, time.perf_counter() - epoch_started)
        except OSError as e:  # a full or failing disk under metrics.jsonl, TensorBoard or summary.json
            raise DlxError(f"cannot write to {e.filename or run.path} ({e.strerror or e}); the checkpoints "
                           f"already saved are intact: {hint}") from None
        except BaseException:  # a divergence, a signal, a hook that raised: the best model found so far is kept
            self.checkpoints.flush_best()
            raise
        finally:
            progress.close()
            self.checkpoints.close()
        return self._summarise(run, time.perf_counter() - started)

    def _train_epoch(self, run: Run, progress, stop) -> int | None:
        """One epoch from state.batch on; returns the signal number if a signal stopped it."""
        cfg, state, world = self.config.train, self.state, self.world
        self.model.train()
        for net in self.forward_nets.values():
            net.train()
        self.epoch_samples = 0  # trained on in this process, for samples/s
        for x, y in self.train_batches.epoch(self.data_order, start=state.batch):
            self.epoch_samples += len(x)
            if self.augment is not None:  # drawn from (seed, batch): a resumed run draws the same
                x = self.augment(x, state.epoch * len(self.train_batches) + state.batch)
            weight = 1.0 / cfg.accumulate
            if world.distributed:  # streamed batches arrive as this rank's part already
                x, y, share = ((x, y, self.train_batches.share) if getattr(self.train_batches, "per_rank", False)
                               else world.shard(x, y))
                weight *= share
            state.batch += 1
            # gradients keep adding up until the group of `accumulate` batches is complete
            complete = self.length.ends_step(state.batch)
            self.train_batch(x, y, weight, complete)
            if not complete:
                continue
            state.step += 1
            if state.step % cfg.log_every == 0 and any(self.unlogged.values()):
                self._log_losses(run, progress)
            if self.sampler is not None and world.is_main and state.step % self.config.samples.every == 0:
                self.sampler(run.writer, self.model, state.step, self.console)
            # 0: go on, 1: train.max_minutes spent, 2: a signal; every rank must take the same decision
            verdict = 2 if stop.signum is not None else int(time.perf_counter() > self.deadline)
            verdict = world.agree(verdict, self.device)
            if verdict == 2:
                return stop.signum or signal.SIGTERM  # a rank that saw no signal stops with its peers
            if verdict == 1:
                state.finished = True  # the time budget is spent: this epoch ends here, evaluated and saved
                return None
        return None

    def train_batch(self, x: torch.Tensor, y: torch.Tensor, weight: float = 1.0,
                    complete: bool = True) -> dict[str, torch.Tensor]:
        """The training step, for the loop and `dlx lr-find`: each group's loss and backward, then (when the batch
        completes a group of train.accumulate) its optimizer's step, group after group. Returns the losses; a
        non-finite one is left out (its backward skipped) under train.on_nan=skip."""
        cfg, losses = self.config.train, {}
        self.objective.advance(self.state.step, self.total_steps)
        if cfg.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        for group in self.groups:
            with self._training(group) as nets:
                with self.autocast():
                    terms = self.objective.loss_terms(group, nets, x, y)
                loss = terms.pop("loss")
                if cfg.on_nan != "skip" or torch.isfinite(loss):  # on_nan=skip: a device read every step
                    self._backward(loss if weight == 1.0 else loss * weight)
                    self.unlogged[group].append(loss.detach())  # no device work per step for the logs
                    for name, value in terms.items():
                        self.unlogged[name].append(value)
                    losses[group] = loss
            if complete:
                self._optimizer_step(group)
        if len(losses) < len(self.groups):
            self.state.skipped += 1
            self.state.epoch_skipped += 1
        if complete:
            if self.scaler is not None:
                self.scaler.update()
            if self.ema is not None:
                self.ema.update_parameters(self.model)
        return losses

    @contextlib.contextmanager
    def _training(self, group: str):
        """The networks as `group`'s loss sees them: its own as training calls it, the others' frozen, so that no
        gradient reaches a network this loss does not train."""
        if len(self.groups) == 1:
            yield self.forward_nets
            return
        frozen = [p for g, net in self.networks.items() if g != group for p in net.parameters() if p.requires_grad]
        for p in frozen:
            p.requires_grad_(False)
        try:
            yield {g: self.forward_nets[g] if g == group else net for g, net in self.networks.items()}
        finally:
            for p in frozen:
                p.requires_grad_(True)

    def _key(self, name: str, group: str) -> str:
        """train/loss for a one-group objective; train/generator_loss, train/discriminator_lr, ... for several."""
        return f"train/{name}" if len(self.groups) == 1 else f"train/{group}_{name}"

    def _log_losses(self, run: Run, progress) -> None:
        """The mean loss of each group since the last log point, and of each term the objective trains besides: the
        only reads of device values on the hot path."""
        step, shown = self.state.step, None
        for group in self.groups:
            mean = self._mean_since_log(group)
            if mean is None:
                continue
            if not math.isfinite(mean):
                raise self._diverged(mean)
            lr = self.optimizers[group].param_groups[0]["lr"]
            run.scalar(self._key("loss", group), mean, step)
            run.scalar(self._key("lr", group), lr, step)
            shown = shown or (mean, lr)
        for term in self.objective.terms_trained:
            mean = self._mean_since_log(term)
            if mean is not None:
                run.scalar(f"train/{term}", mean, step)
        progress.step(step, self.state.epoch, *shown)

    def _mean_since_log(self, key: str) -> float | None:
        """The mean of a group's losses (or a trained term's values) since the last log point; None when none came."""
        count = len(self.unlogged[key])
        return self._add_unlogged(key).item() / count if count else None

    def _add_unlogged(self, key: str) -> torch.Tensor:
        """Adds a group's losses (or a trained term's values) since the last log point to the epoch's sum; returns their
        sum. The values are added at the same steps in a resumed run (a checkpoint keeps them), so its sums are the
        same to the last bit."""
        chunk = self._unlogged_tensor(key).sum()
        self.epoch_loss[key] += chunk
        self.unlogged[key].clear()
        return chunk

    def _unlogged_tensor(self, key: str) -> torch.Tensor:
        losses = self.unlogged[key]
        return torch.stack(losses) if losses else torch.zeros(0, device=self.device)

    def _backward(self, loss: torch.Tensor) -> None:
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()

    def _optimizer_step(self, group: str) -> None:
        clip, optimizer = self.config.train.grad_clip, self.optimizers[group]
        if clip is not None:
            if self.scaler is not None:  # clip the true gradients, not the scaled ones (else scaler.step unscales,
                self.scaler.unscale_(optimizer)  # inside a fused optimizer's own kernel)
            torch.nn.utils.clip_grad_norm_(self.networks[group].parameters(), clip)
        if self.scaler is not None:
            self.scaler.step(optimizer)
        else:
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        self.schedules[group].step()

    def _end_epoch(self, run: Run, progress, seconds: float) -> None:
        cfg, state = self.config.train, self.state
        counted = state.batch - state.epoch_skipped
        values: dict[str, float] = {"epoch": state.epoch + 1}
        for group in self.groups:
            values[self._key("epoch_loss", group)] = self._epoch_mean(group, counted)
        for term in self.objective.terms_trained:
            values[f"train/epoch_{term}"] = self._epoch_mean(term, counted)
        val = self.measure("val")
        bad = [v for v in (*list(values.values())[1:], val["loss"]) if not math.isfinite(v)]
        if bad:
            raise self._diverged(bad[0])  # before anything is saved
        state.epoch += 1
        state.batch = state.epoch_skipped = 0
        for loss in self.epoch_loss.values():
            loss.zero_()
        values.update({f"val/{k}": v for k, v in val.items()})
        run.log(state.step, values)
        if state.epoch == 1 and self.world.is_main:  # after the first epoch, not before: the first step waits for nothing
            tensorboard.log_model_and_data(run.writer, self.model, self.data, self.objective.graph_input)
        tensorboard.log_reconstructions(run.writer, self.eval_model, self.data, state.step)
        run.scalar("time/epoch_seconds", seconds, state.step)
        run.scalar("time/samples_per_second", self.epoch_samples / max(seconds, 1e-9), state.step)
        progress.epoch(state.epoch, values)

        value = values[cfg.monitor]
        better = improved(value, state.best, self.mode, cfg.min_delta)
        for schedule in self.schedules.values():
            schedule.end_epoch(better)  # reduce_on_plateau watches the metric that early stopping watches
        if better:
            state.best, state.best_epoch, state.bad_evals = value, state.epoch, 0
            best = self.checkpoints.new_best(dataclasses.replace(self.checkpoint_state(), model=self.eval_model.state_dict()))
            self.best_model = best.model
        else:
            state.bad_evals += 1
            if cfg.patience is not None and state.bad_evals >= cfg.patience:
                state.finished = True  # early stopping
        final = state.epoch == cfg.epochs or state.finished
        if final or state.epoch % cfg.checkpoint_every == 0:
            self.checkpoints.save_last(self.checkpoint_state, state.step, force=final)
        if self.on_epoch is not None:
            self.on_epoch(state.epoch, values)  # a hook that raises (a sweep pruning) still leaves best.pt current

    def _epoch_mean(self, key: str, counted: int) -> float:
        """A group's loss or a trained term, averaged over the epoch's counted batches (and over the ranks)."""
        self._add_unlogged(key)  # the batches after the epoch's last log point
        return self.world.mean(self.epoch_loss[key]).item() / counted if counted else math.nan

    def _diverged(self, value: float) -> DlxError:
        """Training stops before a diverged model is evaluated or saved: best.pt and last.pt keep the last good state."""
        last_good = self.checkpoints.last_good
        saved = (f"the last good checkpoint is {last_good[0]} (step {last_good[1]})" if last_good
                 else "no checkpoint was saved yet")
        return DlxError(f"the training loss is {value} at step {self.state.step}; {saved}; lower optimizer.lr, set "
                        "train.grad_clip, or leave such batches out with train.on_nan=skip")

    def _summarise(self, run: Run, seconds: float) -> dict[str, Any]:
        """Final metrics of the best model on every split, written to summary.json and TensorBoard's hparams."""
        run.send_scalars()  # the curves reach TensorBoard's writer thread while the final metrics are measured
        if self.best_model is not None:
            self.eval_model.load_state_dict(self.best_model)
        final = {split: self.measure(split) for split in ("train", "val", "test")}
        summary = {
            "run": run.name, "metrics": final, "best_epoch": self.state.best_epoch, "epochs": self.state.epoch,
            "steps": self.state.step, "skipped_batches": self.state.skipped,
            "early_stopped": self.state.epoch < self.config.train.epochs,
            "monitor": {self.config.train.monitor: self.state.best}, "seconds": round(seconds, 3),
            "device": str(self.device), "parameters": sum(p.numel() for p in self.model.parameters()),
            "versions": {"dlx": dlx.__version__, "torch": torch.__version__, "python": platform.python_version()},
        }
        tensorboard.log_hparams(run.writer, self.config, final)
        run.write_json("summary.json", summary)
        if self.world.is_main:
            figures.write(run, self.eval_model, self.data, self.config, self.state.best_epoch, self.objective)
        return summary


def _run_folder(trainer: Trainer, runs_root: Path, name: str) -> Run:
    """Rank 0 creates the run folder; other ranks write their copies to a temporary folder, dropped at the end."""
    if trainer.world.is_main:
        return Run.create(runs_root, name)
    return Run.create(Path(tempfile.mkdtemp(prefix="dlx-rank-")), name)


def start(config: Config, runs_root: Path, quiet: bool = False, console: Console | None = None,
          on_epoch: OnEpoch | None = None) -> tuple[Run, dict]:
    """Build everything, then create the run folder, then train. A build error leaves no folder behind."""
    trainer = Trainer(config, console, quiet, on_epoch)
    run = _run_folder(trainer, runs_root, config.name)
    try:
        write_atomic(run.config_path, dump_config(trainer.config.model_copy(update={"name": run.name})).encode())
        if isinstance(trainer.data, TextSplits):
            write_atomic(run.path / "vocab.json", trainer.data.vocab.to_json().encode())
        elif trainer.spec.task == SEQ2SEQ:  # the source's and the target's, as the checkpoints hold them
            write_atomic(run.path / "vocab.json", vocab_json(trainer.spec).encode())
    except OSError:  # a full disk: a folder without its config would be no run, only litter
        run.close()
        shutil.rmtree(run.path, ignore_errors=True)
        raise
    return run, _fit(trainer, run)


def _fit(trainer: Trainer, run: Run) -> dict:
    try:
        return trainer.fit(run)
    finally:
        run.close()
        if not trainer.world.is_main:
            shutil.rmtree(run.path.parent, ignore_errors=True)
        trainer.world.leave()


def resume(run_path: str | Path, quiet: bool = False, console: Console | None = None,
           accept_config_change: bool = False) -> tuple[Run, dict]:
    """Continue a run from its last checkpoint, with its own saved config, under any number of processes."""
    run = Run.open(run_path)
    resuming.check_own(run)
    if os.environ.get("RANK", "0") == "0":  # the other ranks of a distributed run work under rank 0's lock
        run.claim("resume it")
    try:
        config = load_config(run.config_path)
        last_path, best_path = run.checkpoint("last"), run.checkpoint("best")
        # no last.pt: the run stopped (a kill, a crash) before its first checkpoint, so it has nothing to lose
        last = checkpoint.load(last_path) if last_path.is_file() else None
        best = checkpoint.load(best_path) if last is not None and best_path.is_file() else None
        changes = resuming.check_config(run, last, config, accept_config_change) if last is not None else []
        trainer = Trainer(config, console, quiet, fresh=last is None)
        if last is None:
            trainer.console.print(resuming.no_checkpoint_note(run, config), highlight=False, soft_wrap=True)
        else:
            trainer.restore(last, best)
        for change in changes:
            trainer.console.print(f"{run.path}: continuing with a changed config: {change}", highlight=False,
                                  soft_wrap=True)
        if trainer.state.finished or trainer.state.epoch >= config.train.epochs:
            raise DlxError(f"{run.path}: this run has finished; start a new one with `dlx train {run.config_path}`")
    except BaseException:
        run.close()  # the lock: a refused resume leaves the run to the next one
        raise
    if trainer.world.is_main:
        run.discard_partial_writes()
        run.truncate_history(trainer.state.step)
    else:
        run = _run_folder(trainer, run.path.parent, run.name)
    return run, _fit(trainer, run)
