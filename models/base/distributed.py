"""Multi-process helpers of the trainer: what the launcher asked for, and per-rank RNG states.

Launch N processes on one machine with either of::

    torchrun --nproc_per_node N -m bins.train --config ... --exp_dir ...
    accelerate launch --multi_gpu --num_processes N -m bins.train ...

On a machine without a GPU both run N CPU processes over gloo (the trainer asks accelerate for CPU there;
accelerate 1.x has no ``--multi_cpu`` flag, an accelerate config with ``distributed_type: MULTI_CPU`` works
too). ``accelerate launch --cpu --num_processes N`` starts ONE process; the trainer warns when the environment
shows that more were asked for than the run has.
"""

from __future__ import annotations

import logging
import os
import random
from typing import Any, Dict, List, Mapping, Optional

import numpy as np
import torch

log = logging.getLogger("echelon.trainer")

_WORLD_SIZE_VARS = ("WORLD_SIZE", "ACCELERATE_NUM_PROCESSES", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE")


def launcher_world_size() -> Optional[int]:
    """The process count a launcher put in the environment (None when there is no such hint).

    accelerate's single-process launcher sets ``MASTER_PORT`` only when asked for several processes, and
    no ``WORLD_SIZE``: that case is reported as 2 (at least two were wanted).
    """
    for var in _WORLD_SIZE_VARS:
        value = os.environ.get(var, "")
        if value.isdigit() and int(value) > 0:
            return int(value)
    if "ACCELERATE_USE_CPU" in os.environ and "MASTER_PORT" in os.environ:
        return 2
    return None


def check_world_size(num_processes: int) -> None:
    """Warn when the launcher asked for more processes than the run has."""
    wanted = launcher_world_size()
    if wanted is not None and wanted > num_processes:
        log.warning(
            "the launcher asked for %s%d processes but this run has %d: use `torchrun --nproc_per_node N` or "
            "`accelerate launch --multi_gpu --num_processes N` (gloo on a machine without GPUs)",
            "at least " if "WORLD_SIZE" not in os.environ else "", wanted, num_processes,
        )  # fmt: skip


def gather_objects(obj: Any, num_processes: int) -> List[Any]:
    """``obj`` of every rank, in rank order (a plain list with one process)."""
    if num_processes == 1:
        return [obj]
    import torch.distributed as dist

    out: List[Any] = [None] * num_processes
    dist.all_gather_object(out, obj)
    return out


def rng_states() -> Dict[str, Any]:
    """This process's Python, NumPy, torch (and CUDA) RNG states, as tensors and plain values (checkpointable)."""
    np_state = np.random.get_state()
    state = {
        "rng_python": random.getstate(),
        "rng_numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                      "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
        "rng_torch": torch.get_rng_state(),
    }  # fmt: skip
    if torch.cuda.is_available():
        state["rng_cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_states(state: Mapping[str, Any]) -> None:
    """Restore what :func:`rng_states` returned."""
    py = state["rng_python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    npst = state["rng_numpy"]
    np.random.set_state(("MT19937", npst["keys"].numpy().astype(np.uint32), npst["pos"],
                         npst["has_gauss"], npst["cached_gaussian"]))  # fmt: skip
    torch.set_rng_state(state["rng_torch"])
    if "rng_cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["rng_cuda"])
