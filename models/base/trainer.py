"""BaseTrainer: the one training loop every Echelon model uses (accelerate underneath).

Contract for a model's trainer (see ``models/example/toy_autoencoder/trainer.py`` for a complete small one)::

    @register("trainer", "<my_model>")
    class MyTrainer(BaseTrainer):
        config_class = MyExperimentConfig  # @experiment_config(...): model_type, model, data, train (TrainConfig subclass)

        def build_models(self) -> dict[str, nn.Module]          # trained: {"generator": G, "discriminator": D}
        def build_frozen(self) -> dict[str, nn.Module | FrozenComponent]   # optional: used, never trained
        def build_datasets(self) -> tuple[Dataset, Dataset | None]   # train, valid
        def collate(self, items) -> batch                            # optional, default torch default_collate
        def train_step(self, batch) -> dict[str, float | Tensor]     # calls self.optimize(name, loss)
        def valid_step(self, batch, index) -> dict[str, float]       # optional; may call self.tracker.log_*
        # optional, config-driven by default:
        def build_optimizers(self, models) -> dict[str, Optimizer]   # train.optimizers (models.base.optim)
        def build_schedulers(self, optimizers) -> dict[str, LRScheduler]   # train.schedulers
        def build_sampler(self, dataset, train) -> batch sampler     # train.batching (models.base.sampler)
        # data.format "shar" (streamed Lhotse Shar shards, models/base/shar_stream.py) instead of build_datasets:
        def item_from_cut(self, cut) -> item                         # the item build_datasets' train set gives
        def keep_cut(self, meta) -> bool                             # optional: its filter (id, duration, text)
        def build_valid_dataset(self) -> Dataset | None              # optional: validation stays map-style

Inside ``train_step`` use the prepared models from ``self.models[name]`` and the frozen ones from
``self.frozen_modules[name]``, and call ``self.optimize(name, loss)`` once per optimizer: it handles mixed
precision, gradient accumulation, clipping (``train.grad_clip_norm``), skipping and counting non-finite losses
or gradients, and stepping per-step schedulers only when the optimizer really stepped. A GAN calls
:func:`models.base.adversarial.adversarial_step` (discriminator update, then the generator's adversarial and
feature-matching losses with the discriminator frozen).

Frozen components (:mod:`models.base.frozen`: an SSL model, a codec, a stage-1 encoder) stay in eval mode
without gradients, are moved to the device once, are neither wrapped by accelerate/DDP nor saved; each
checkpoint's ``meta.json`` records where they came from, and the run's ``world_size``.

Randomness: the batch order of epoch ``e`` depends only on ``train.seed + e`` (:mod:`models.base.sampler`,
fixed-size or duration-bucketed batches); datasets with random crops should draw from
``np.random.default_rng((seed, epoch, index))`` using the ``set_epoch(epoch)`` hook that the trainer calls on
them. Together with the RNG states of every rank saved in each checkpoint this makes ``--resume`` continue
exactly as an uninterrupted run would (tested, also with two processes).

Multiple processes (:mod:`models.base.distributed`, ``torchrun`` or ``accelerate launch``; gloo without a GPU):
each takes its shard of every epoch's batches, accelerate wraps the trained models in DDP, only rank 0 writes.

Stopping early (agreed by every rank; the step is then saved, atomically, and ``--resume`` continues from it):
SIGINT/SIGTERM stop after the current step (``self.interrupted`` = 130/143; a second Ctrl-C during the save
leaves the earlier checkpoints intact). ``self.request_stop(reason)`` (from ``train_step`` or ``after_step()``,
a hook called after each optimizer step once its logging, validation and saving are done) makes ``train()``
return normally; so does ``train.cpu_minutes`` ("CPU budget of N min reached at step S") once
``self.cpu_minutes_used()`` (this process's CPU time in ``train()`` plus earlier runs', kept in the trainer
state; logged as ``cpu_minutes``) reaches it.

Mixed precision: ``train.mixed_precision`` if the config sets it, else the launcher's (``accelerate launch``
exports ``ACCELERATE_MIXED_PRECISION``), else "no"; one log line names the source that won.
"""

from __future__ import annotations

import contextlib
import logging
import math
import warnings
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple, Union

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, IterableDataset
from torch.utils.data.dataloader import default_collate

from models.base import checkpoint as ckpt
from models.base import optim
from models.base.distributed import check_world_size, gather_objects, rng_states, set_rng_states
from models.base.experiment import last_logged_values, load_weights, make_accelerator, truncate_log
from models.base.frozen import FrozenComponent, FrozenModules
from models.base.sampler import build_batch_sampler
from models.base.shar_stream import build_stream, check_resume_layout, data_format
from models.base.tracker import Tracker
from models.base.train_config import TrainConfig
from utils.config import ConfigError, to_dict
from utils.interrupt import CpuBudget, StopOnSignal
from utils.progress import Progress
from utils.rng import seeded

log = logging.getLogger("echelon.trainer")



def step_scheduler(scheduler: Any) -> None:
    """``scheduler.step()`` without PyTorch's two false alarms about the call order, which is right here:
    a run resumed exactly at an epoch's end closes that epoch before its first optimizer step (tested), and with
    fp16 accelerate wraps ``optimizer.step`` to see the scaler's skips, which hides the call from PyTorch's check.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step")
        warnings.filterwarnings("ignore", message="Seems like `optimizer.step\\(\\)` has been overridden")
        scheduler.step()

class BaseTrainer:
    # the experiment dataclass (model_type, model, data, train: a TrainConfig subclass) validating the config
    config_class: type

    def __init__(
        self,
        config: Any,
        exp_dir: str | Path,
        *,
        resume: bool = False,
        init_from: Optional[str | Path] = None,
        finetune_from: Optional[str | Path] = None,
        cpu: bool = False,
    ):
        from accelerate.utils import set_seed

        self.cfg = config
        self.train_cfg: TrainConfig = config.train
        self.exp_dir = Path(exp_dir)
        self.ckpt_root = self.exp_dir / "checkpoints"
        tc = self.train_cfg
        if tc.cpu_minutes is not None and not tc.cpu_minutes > 0:
            raise ConfigError(f"train.cpu_minutes must be a positive number of minutes, got {tc.cpu_minutes}")
        self.accelerator = make_accelerator(tc, cpu)  # mixed precision: the config's, else the launcher's
        check_world_size(self.accelerator.num_processes)
        self.device = self.accelerator.device
        self.is_main = self.accelerator.is_main_process
        set_seed(tc.seed)
        self._set_up_models()
        self._set_up_data(config)
        self.step = 0
        self.epoch = 0
        self.batch_in_epoch = 0
        self.saved_step: Optional[int] = None  # step of the checkpoint this run last wrote or resumed from
        self.skipped: Dict[str, int] = {name: 0 for name in self.optimizers}
        self.cpu_budget = CpuBudget(tc.cpu_minutes)  # its earlier minutes come from the resumed checkpoint
        self.stop_reason: Optional[str] = None  # set by request_stop (a subclass, or the CPU budget)

        self.exp_dir.mkdir(parents=True, exist_ok=True)
        if resume:
            self._resume()
            if self.is_main:  # the log keeps the steps up to the checkpoint; later ones are logged again
                truncate_log(self.exp_dir, self.step)
        elif init_from is not None or finetune_from is not None:
            self.load_weights(init_from or finetune_from, strict=finetune_from is not None)
        self.tracker = Tracker(self.exp_dir, enabled=self.is_main, tensorboard=tc.tensorboard)

    def _set_up_models(self) -> None:
        """Frozen modules, then the trained models and their optimizers prepared by accelerate (DDP, device,
        mixed precision), then the schedulers."""
        self.frozen_modules = FrozenModules(self.build_frozen(), self.device)
        models = self.build_models()
        clash = sorted(set(models) & set(self.frozen_modules))
        if clash:
            raise ValueError(f"{clash} are both trained (build_models) and frozen (build_frozen)")
        optimizers = self.build_optimizers(models)
        unknown = set(optimizers) - set(models)
        if unknown:
            raise ValueError(f"optimizers {sorted(unknown)} have no model of the same name")
        self.raw_models: Dict[str, nn.Module] = models
        names_m, names_o = list(models), list(optimizers)
        prepared = self.accelerator.prepare(*models.values(), *optimizers.values())
        if len(names_m) + len(names_o) == 1:
            prepared = (prepared,)
        self.models = dict(zip(names_m, prepared[: len(names_m)]))
        self.optimizers = dict(zip(names_o, prepared[len(names_m) :]))
        # Schedulers are stepped by us (not accelerate) so that a step means one optimizer step.
        self.schedulers = self.build_schedulers({n: o.optimizer for n, o in self.optimizers.items()})

    def _set_up_data(self, config: Any) -> None:
        """The train and validation sets and their batch samplers (a Shar stream is its own sampler)."""
        if data_format(config) == "shar":  # streamed shards: the stream is its own sampler
            self.train_set = self.sampler = build_stream(self)
            self.valid_set = self.build_valid_dataset()
        else:
            self.train_set, self.valid_set = self.build_datasets()
            self.sampler = self.build_sampler(self.train_set, train=True)
        # built now so that a validation set the batching cannot use fails before training starts
        self.valid_sampler = self.build_sampler(self.valid_set, train=False) if self.valid_set is not None else None

    # ------------------------------------------------------------------ hooks for subclasses
    def build_models(self) -> Dict[str, nn.Module]:
        raise NotImplementedError

    def build_frozen(self) -> Dict[str, Union[nn.Module, FrozenComponent]]:
        """Modules used but not trained (see :mod:`models.base.frozen`); called before ``build_models``."""
        return {}

    def build_optimizers(self, models: Mapping[str, nn.Module]) -> Dict[str, torch.optim.Optimizer]:
        """One optimizer per model from ``train.optimizers`` (an entry per model name, or ``default``)."""
        return optim.build_optimizers(models, self.train_cfg.optimizers)

    def build_schedulers(self, optimizers: Mapping[str, torch.optim.Optimizer]) -> Dict[str, Any]:
        """Schedulers from ``train.schedulers`` (none by default); stepped per ``train.scheduler_interval``."""
        tc = self.train_cfg
        total = tc.max_steps if tc.scheduler_interval == "step" else tc.max_epochs
        return optim.build_schedulers(optimizers, tc.schedulers, total)

    def build_datasets(self) -> Tuple[Dataset, Optional[Dataset]]:
        raise NotImplementedError

    def item_from_cut(self, cut: Any) -> Any:
        """``data.format: "shar"``: one streamed Lhotse cut -> the item the family's train set would give."""
        raise NotImplementedError(f"{type(self).__name__} cannot train from shards: it has no item_from_cut")

    shar_fields: Optional[List[str]] = None  # Shar fields item_from_cut reads (None: all)

    def keep_cut(self, meta: Any) -> bool:
        """Whether a streamed cut trains (``CutMeta``: id, duration, text, speaker); the manifest dataset's filter."""
        return True

    def build_valid_dataset(self) -> Optional[Dataset]:
        """``data.format: "shar"``: the validation set (map-style); none by default."""
        return None

    def collate(self, items: list) -> Any:
        return default_collate(items)

    def item_lengths(self, dataset: Dataset) -> Optional[list]:
        """Optional per-item lengths for length-bucketed fixed-size batches."""
        return None

    def item_durations(self, dataset: Dataset) -> List[float]:
        """Seconds per item for ``train.batching.type: duration``: the dataset's ``durations()``."""
        if not hasattr(dataset, "durations"):
            raise ValueError(f"train.batching type 'duration': {type(dataset).__name__} has no durations() "
                             "method (seconds per item, from the manifest's 'duration')")  # fmt: skip
        return list(dataset.durations())

    def build_sampler(self, dataset: Dataset, train: bool) -> Any:
        """Batches of ``dataset`` indices: shuffled per epoch and sharded across processes when ``train``."""
        tc, acc = self.train_cfg, self.accelerator
        duration = tc.batching.type == "duration"
        return build_batch_sampler(
            tc.batching, num_items=len(dataset), batch_size=tc.batch_size, seed=tc.seed, train=train,
            rank=acc.process_index, world_size=acc.num_processes,
            lengths=self.item_lengths(dataset) if train and not duration else None,
            durations=self.item_durations(dataset) if duration else None,
        )  # fmt: skip

    def train_step(self, batch: Any) -> Dict[str, Any]:
        raise NotImplementedError

    def valid_step(self, batch: Any, index: int) -> Optional[Dict[str, float]]:
        return None

    def after_step(self) -> None:
        """Called after every optimizer step, once its logging, validation and saving are done."""

    def request_stop(self, reason: str) -> None:
        """Stop at the end of the current step: it is saved and ``train()`` returns normally (first reason kept)."""
        if self.stop_reason is None:
            self.stop_reason = reason

    def cpu_minutes_used(self) -> float:
        """CPU minutes of training so far: this process's in ``train()`` plus those of the resumed run(s)."""
        return self.cpu_budget.used()

    # ------------------------------------------------------------------ helpers for train_step
    def unwrap(self, name: str) -> nn.Module:
        return self.accelerator.unwrap_model(self.models[name])

    @contextlib.contextmanager
    def frozen(self, *names: str) -> Iterator[None]:
        """Temporarily stop gradients into the named models' parameters."""
        params = [p for n in names for p in self.models[n].parameters() if p.requires_grad]
        for p in params:
            p.requires_grad_(False)
        try:
            yield
        finally:
            for p in params:
                p.requires_grad_(True)

    def optimize(self, name: str, loss: torch.Tensor) -> bool:
        """Backward ``loss`` and step optimizer ``name`` when the accumulation window is full.

        Returns True if the optimizer stepped. Non-finite losses are not back-propagated; non-finite
        gradients skip the step; both are counted in ``self.skipped[name]`` and logged.
        """
        opt = self.optimizers[name]
        if not bool(torch.isfinite(loss.detach()).all()):
            self.skipped[name] += 1
            opt.zero_grad(set_to_none=True)
            log.warning("step %d: non-finite %s loss, step skipped", self.step, name)
            return False
        self.accelerator.backward(loss)
        if not self.accelerator.sync_gradients:
            return False
        params = [p for g in opt.optimizer.param_groups for p in g["params"]]
        max_norm = self.train_cfg.grad_clip_norm
        norm = self.accelerator.clip_grad_norm_(params, max_norm if max_norm else float("inf"))
        fp16 = self.accelerator.scaler is not None
        if not fp16 and norm is not None and not math.isfinite(float(norm)):
            self.skipped[name] += 1
            opt.zero_grad(set_to_none=True)
            log.warning("step %d: non-finite %s gradients, step skipped", self.step, name)
            return False
        opt.step()
        stepped = not (fp16 and opt.step_was_skipped)
        if not stepped:
            self.skipped[name] += 1
        opt.zero_grad(set_to_none=True)
        if stepped and self.train_cfg.scheduler_interval == "step" and name in self.schedulers:
            step_scheduler(self.schedulers[name])
        return stepped

    # ------------------------------------------------------------------ loop
    def _loader(self, dataset: Dataset, sampler: Any) -> DataLoader:
        if isinstance(dataset, IterableDataset):
            return dataset.loader()
        # A private generator keeps DataLoader start-up from consuming the global torch RNG.
        return DataLoader(
            dataset, batch_sampler=sampler, collate_fn=self.collate, num_workers=self.train_cfg.num_workers,
            generator=torch.Generator().manual_seed(self.train_cfg.seed),
        )  # fmt: skip

    def _to_device(self, batch: Any) -> Any:
        from accelerate.utils import send_to_device

        return send_to_device(batch, self.device)

    def train(self, quiet: bool = False) -> Dict[str, Any]:
        """Run to ``train.max_steps`` (or ``max_epochs``) or a stop (sets ``interrupted`` or ``stop_reason``);
        returns the last step's values, or the log's when no step was left (``steps_trained`` 0)."""
        tc = self.train_cfg
        last: Dict[str, Any] = {}
        self.interrupted: Optional[int] = None
        self.steps_trained = 0
        self.cpu_budget.start()
        self._check_budget()  # a resumed run whose budget is spent trains no step
        show = tc.progress_bar and self.is_main and not quiet
        with StopOnSignal("the current step") as stop, \
                Progress(None if tc.cpu_minutes else tc.max_steps,  # a CPU budget may end the run first
                         "train", unit="steps", initial=self.step, quiet=not show) as progress:
            while self._more_to_train():
                self.sampler.set_epoch(self.epoch, start_batch=self.batch_in_epoch)
                if hasattr(self.train_set, "set_epoch") and self.train_set is not self.sampler:
                    self.train_set.set_epoch(self.epoch)
                for batch in self._loader(self.train_set, self.sampler):
                    for model in self.models.values():
                        model.train()
                    with self.accelerator.accumulate(*self.models.values()), self.accelerator.autocast():
                        values = self.train_step(self._to_device(batch))
                    self.batch_in_epoch += 1
                    if not self.accelerator.sync_gradients:
                        continue
                    self.step += 1
                    self.steps_trained += 1
                    last = {k: float(v.detach()) if isinstance(v, torch.Tensor) else float(v) for k, v in values.items()}
                    self._after_step(last, progress)
                    self.after_step()
                    self._check_budget()
                    self._agree_on_stop(stop.exit_code)
                    if not self._more_to_train():
                        break
                else:
                    self._end_epoch()
        stopped = stop.name if self.interrupted is not None else self.stop_reason
        if self.saved_step != self.step:  # the same decision on every rank
            self.save()
        if stopped and self.is_main:
            log.info("stopped (%s): the checkpoint of step %d is saved", stopped, self.step)
        self.tracker.close()
        return last if self.steps_trained else last_logged_values(self.exp_dir, self.step)

    def _more_to_train(self) -> bool:
        tc, stopped = self.train_cfg, self.interrupted is not None or self.stop_reason is not None
        return not stopped and self.step < tc.max_steps and (tc.max_epochs is None or self.epoch < tc.max_epochs)

    def _end_epoch(self) -> None:
        self.epoch += 1
        self.batch_in_epoch = 0
        if self.train_cfg.scheduler_interval == "epoch":
            for sched in self.schedulers.values():
                step_scheduler(sched)

    def _check_budget(self) -> None:
        if self.cpu_budget.reached:
            self.request_stop(f"CPU budget of {self.cpu_budget.minutes:g} min reached at step {self.step}")

    def _agree_on_stop(self, exit_code: Optional[int]) -> None:
        """Any rank's stop stops every rank (signals arrive at different moments, budgets and requests are per rank:
        a rank leaving alone would leave the others waiting in a collective). One all-reduce of two numbers."""
        if self.accelerator.num_processes == 1 or not torch.distributed.is_initialized():
            self.interrupted = exit_code
            return
        flags = torch.tensor([exit_code or 0, self.stop_reason is not None], device=self.device)
        torch.distributed.all_reduce(flags, op=torch.distributed.ReduceOp.MAX)
        self.interrupted = int(flags[0].item()) or None
        if flags[1].item() and self.stop_reason is None:
            self.request_stop(f"another process stopped at step {self.step}")

    def _after_step(self, values: Dict[str, float], progress: Progress) -> None:
        tc = self.train_cfg
        if self.step % tc.log_every == 0 or self.step == 1:
            lrs = {f"lr_{n}": o.optimizer.param_groups[0]["lr"] for n, o in self.optimizers.items()}
            skipped = {f"skipped_{n}": c for n, c in self.skipped.items()}
            self.tracker.log_step(self.step, {**values, **lrs, **skipped, "cpu_minutes": self.cpu_minutes_used()})
        spent = {"cpu_min": f"{self.cpu_minutes_used():.1f}/{tc.cpu_minutes:g}"} if tc.cpu_minutes else {}
        progress.update(1, **dict(list(values.items())[:4]), **spent)  # and how much of a CPU budget is spent
        if self.valid_set is not None and tc.valid_every > 0 and self.step % tc.valid_every == 0:
            self.validate()
        if tc.save_every > 0 and self.step % tc.save_every == 0:
            self.save()

    @torch.no_grad()
    def validate(self) -> Dict[str, float]:
        """Average ``valid_step`` over the validation set; training RNG is left untouched."""
        totals: Dict[str, float] = {}
        count = 0
        # The GPU's generator too (accelerate's single-GPU device is plain "cuda"): validation's draws must not
        # shift the training run's, or a resumed run would not continue like an uninterrupted one.
        with seeded(device=self.device):
            for model in self.models.values():
                model.eval()
            for index, batch in enumerate(self._loader(self.valid_set, self.valid_sampler)):
                with self.accelerator.autocast():
                    out = self.valid_step(self._to_device(batch), index)
                if not out:
                    continue
                for k, v in out.items():
                    totals[k] = totals.get(k, 0.0) + float(v)
                count += 1
        means = {k: v / count for k, v in totals.items()} if count else {}
        if means:
            self.tracker.log_step(self.step, means, split="valid")
        return means

    # ------------------------------------------------------------------ checkpoints
    def trainer_state(self) -> Dict[str, Any]:
        """Counters and RNG states; with several processes every rank's RNG states (``rng_ranks``).

        Every process must call it (it gathers across ranks); only the main one saves the result.
        """
        state = {"step": self.step, "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch,
                 "skipped": dict(self.skipped), "data_workers": self.train_cfg.num_workers,
                 "cpu_minutes": self.cpu_minutes_used(), **rng_states()}  # fmt: skip
        if self.accelerator.num_processes > 1:
            state["rng_ranks"] = gather_objects(rng_states(), self.accelerator.num_processes)
        return state

    def _restore_trainer_state(self, state: Mapping[str, Any]) -> None:
        self.step = int(state["step"])
        self.epoch = int(state["epoch"])
        self.batch_in_epoch = int(state["batch_in_epoch"])
        self.skipped.update(state.get("skipped", {}))
        self.cpu_budget.earlier = float(state.get("cpu_minutes", 0.0))  # absent before train.cpu_minutes existed
        ranks = state.get("rng_ranks") or [state]
        check_resume_layout(len(ranks), self.accelerator.num_processes, state.get("data_workers"),
                            self.train_cfg.num_workers, streamed=self.train_set is self.sampler)
        set_rng_states(ranks[self.accelerator.process_index % len(ranks)])

    def save(self) -> Optional[Path]:
        """Write a checkpoint (main process only); every process must call it."""
        self.accelerator.wait_for_everyone()
        path = None
        state = self.trainer_state()
        if self.is_main:
            path = ckpt.save_checkpoint(
                self.ckpt_root, self.step,
                models={n: self.unwrap(n) for n in self.models},
                config={**to_dict(self.cfg)},
                optimizers={n: o.optimizer for n, o in self.optimizers.items()},
                schedulers=self.schedulers, trainer_state=state, epoch=self.epoch,
                extra_meta={"world_size": self.accelerator.num_processes, "frozen": self.frozen_modules.sources()},
            )  # fmt: skip
            ckpt.prune_checkpoints(self.ckpt_root, self.train_cfg.keep_last)
            log.info("saved %s", path)
        self.saved_step = self.step
        self.accelerator.wait_for_everyone()
        return path

    def _resume(self) -> None:
        latest = ckpt.latest_valid_checkpoint(self.ckpt_root)  # skips (and names) damaged newer ones
        if latest is None:
            log.info("--resume: no checkpoint under %s, starting from scratch", self.ckpt_root)
            return
        for name in self.models:
            self.unwrap(name).load_state_dict(ckpt.load_model_weights(latest, name), strict=True)
        for name, opt in self.optimizers.items():
            opt.optimizer.load_state_dict(ckpt.load_torch_state(latest / f"optimizer_{name}.pt"))
        for name, sched in self.schedulers.items():
            sched.load_state_dict(ckpt.load_torch_state(latest / f"scheduler_{name}.pt"))
        self._restore_trainer_state(ckpt.load_torch_state(latest / "trainer_state.pt"))
        self.saved_step = self.step
        log.info("resumed from %s (step %d, epoch %d)", latest, self.step, self.epoch)

    def load_weights(self, path: str | Path, strict: bool) -> Dict[str, Dict[str, list]]:
        """Weights from another checkpoint (fresh optimizers, step 0): :func:`models.base.experiment.load_weights`."""
        self.load_report = load_weights({name: self.unwrap(name) for name in self.models}, path, strict)
        return self.load_report
