"""utils.rng: a seeded block draws what torch.manual_seed would give and hands the caller's generator back."""

import torch

from models.base.streaming import PrivateRandom
from tests.helpers import REPO_ROOT
from tests.test_code_shape import NOT_LIBRARY, python_files
from utils.rng import gpu_indices, seeded


def test_a_seeded_block_draws_from_its_seed_and_restores_the_caller_state():
    torch.manual_seed(7)
    expected_inside = torch.randn(4, generator=torch.Generator().manual_seed(3))
    caller_next = torch.randn(4, generator=torch.Generator().manual_seed(7))
    with seeded(3):
        inside = torch.randn(4)
    assert torch.equal(inside, expected_inside)
    assert torch.equal(torch.randn(4), caller_next)  # as if the block had not run


def test_an_unseeded_block_only_sets_the_state_aside():
    torch.manual_seed(11)
    with seeded():
        torch.randn(100)
    assert torch.equal(torch.randn(3), torch.randn(3, generator=torch.Generator().manual_seed(11)))


def test_the_cpu_touches_no_gpu_generator():
    assert gpu_indices("cpu") == [] and gpu_indices("cuda:1") == [1]  # a named GPU needs no CUDA call
    started = torch.cuda.is_initialized()
    with seeded(3):
        torch.randn(2)
    assert torch.cuda.is_initialized() == started  # a CPU block never starts CUDA


def test_private_streams_interleaved_draw_what_each_draws_alone():
    alone = {}
    for seed in (1, 2):
        stream = PrivateRandom(seed)
        with stream.active():
            alone[seed] = [torch.randn(2) for _ in range(3)]
    streams, turns = {1: PrivateRandom(1), 2: PrivateRandom(2)}, {1: [], 2: []}
    for _ in range(3):
        for seed, stream in streams.items():
            with stream.active():
                turns[seed].append(torch.randn(2))
    assert all(torch.equal(a, b) for seed in (1, 2) for a, b in zip(alone[seed], turns[seed]))


def _seeding_calls(path) -> list:
    """``file:line call`` of every ``torch.manual_seed`` / ``torch.random.manual_seed`` / ``fork_rng`` call."""
    import ast

    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call):
            name = ast.unparse(node.func)
            if name in ("torch.manual_seed", "torch.random.manual_seed") or name.endswith("fork_rng"):
                found.append(f"{path.relative_to(REPO_ROOT).as_posix()}:{node.lineno} {name}")
    return found


def test_library_code_seeds_through_utils_rng():
    """torch.manual_seed reseeds every GPU too, and a CPU-only fork_rng gives back only the CPU's generator:
    library code seeds through utils.rng (PrivateRandom keeps its own states of the same generators)."""
    allowed = {"utils/rng.py", "models/base/streaming.py"}
    found = [call for path in python_files() if path.relative_to(REPO_ROOT).parts[0] not in NOT_LIBRARY
             and path.relative_to(REPO_ROOT).as_posix() not in allowed for call in _seeding_calls(path)]
    assert not found, "seed with utils.rng.seeded instead:\n" + "\n".join(found)
