# shellcheck shell=bash
# Environment shared by Echelon recipes: repository root, Python interpreter, CLI launchers.
#
# Source it from a recipe as  . "$(dirname "${BASH_SOURCE[0]}")/../../utils/env.sh"  (any depth works: the
# repository root is found from this file's own location). Sets repo_root, python and exports PYTHONPATH.
# Override the interpreter with ECHELON_PYTHON=/path/to/python.

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
if [ -n "${ECHELON_PYTHON:-}" ]; then
    python="$ECHELON_PYTHON"
elif [ -x "$repo_root/.venv/bin/python" ]; then
    python="$repo_root/.venv/bin/python"
else
    python="$(command -v python3 || true)"
fi
[ -n "$python" ] && "$python" -c 'import sys' 2>/dev/null ||
    { echo "${0##*/}: error: no Python found; run 'make install' (creates .venv) or set ECHELON_PYTHON" >&2; exit 1; }
export PYTHONPATH="$repo_root${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONIOENCODING=UTF-8
# transformers prints a per-key load report for every truncated SSL model (layers we deliberately skip).
export TRANSFORMERS_VERBOSITY="${TRANSFORMERS_VERBOSITY:-error}"
# One intra-op thread by default: the tiny CPU models gain nothing from more, and on a busy machine OpenMP
# spin-waiting multiplies CPU time. Parallel work uses processes (--nj). Raise it for big CPU-only runs.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"

# Run a Python module from the repository root: py_module bins.evaluate --flag ...
py_module() {
    (cd "$repo_root" && "$python" -m "$@")
}

# Train with bins.train; with ngpu > 1 through accelerate launch (one process per GPU), with ngpu 0 on the CPU.
#   py_train NGPU --config C --exp_dir D [overrides...]
py_train() {
    local ngpu="$1"
    shift
    if [ "$ngpu" -gt 1 ]; then
        local visible
        visible="$("$python" -c 'import torch; print(torch.cuda.device_count())' 2>/dev/null || echo 0)"
        local seen="$visible GPUs are"
        [ "$visible" -ne 1 ] || seen="1 GPU is"
        [ "$visible" -ge "$ngpu" ] ||
            { echo "${0##*/}: error: --ngpu $ngpu but only $seen visible" >&2; return 1; }
        (cd "$repo_root" && "$python" -m accelerate.commands.launch --num_processes "$ngpu" -m bins.train "$@")
    elif [ "$ngpu" -eq 0 ]; then
        (cd "$repo_root" && "$python" -m bins.train --cpu "$@")
    else
        (cd "$repo_root" && "$python" -m bins.train "$@")
    fi
}

# The torch device inference should use for a given --ngpu.
infer_device() {
    if [ "$1" -gt 0 ] && "$python" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
        echo cuda
    else
        echo cpu
    fi
}
