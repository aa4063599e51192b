#!/usr/bin/env bash
# The CUDA checks in one run, for a machine with an NVIDIA GPU (our machines have none; see benchmarks/README.md):
#   1. tests/cuda: every family against its official fixtures on the GPU, the shared trainer (float32, bf16,
#      fp16, resume), seeded random streams, and echelon-train / echelon-infer --device cuda;
#   2. WaveGrad 2's real-time factor per number of refinement steps (paper size, random weights);
#   3. HierSpeech++ zero-shot VC per stage, on the machine's CPU and on the GPU (full size, random weights);
#   4. the anti-aliased activation's two paths on the GPU (benchmarks/alias_free_gpu.py).
#
# Usage, from the repository root: bash benchmarks/cuda_check.sh [OUT_DIR [STEP...]]
#   OUT_DIR: where the logs go (default $OUT); STEP: tests, wavegrad2_rtf, hierspeechpp_vc, alias_free (default all)
#   GPU_EXTRA=DIR   wheels (DIR/whl/*.whl, installed with --target) and fixtures (DIR/fixtures) for a machine that
#                   has PyTorch but not Echelon's lighter dependencies (default .gpu)
# Every step runs whatever the one before it gave; the last lines are the summary, and the exit status is 1
# when any step failed.
set -uo pipefail

out="${1:-${OUT:-/tmp/echelon_cuda_check}}"
[ $# -gt 0 ] && shift
steps="tests wavegrad2_rtf hierspeechpp_vc alias_free"
wanted=" ${*:-$steps} "
for name in $wanted; do  # a misspelt step would otherwise run nothing and read as a failure
    [[ " $steps " == *" $name "* ]] || { echo "cuda_check: unknown step '$name' (steps: $steps)" >&2; exit 2; }
done
extra="${GPU_EXTRA:-.gpu}"
mkdir -p "$out"
export PYTHONUNBUFFERED=1
if compgen -G "$extra/whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/echelon_site \
        "$extra"/whl/*.whl || { echo "cuda_check: the wheels in $extra/whl did not install" >&2; exit 2; }
    export PYTHONPATH="/tmp/echelon_site${PYTHONPATH:+:$PYTHONPATH}"
fi
[ -d "$extra/fixtures" ] && export ECHELON_FIXTURES="${ECHELON_FIXTURES:-$extra/fixtures}"

nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm --format=csv 2>&1 | tee "$out/gpu.txt"
python3 -c "import torch; print('torch', torch.__version__, 'CUDA', torch.version.cuda, torch.cuda.get_device_name())" \
    2>&1 | tee -a "$out/gpu.txt"

status=()
step() {  # step NAME SECONDS COMMAND...: run it under a time limit, log it, remember how it ended
    local name="$1" limit="$2"; shift 2
    [[ "$wanted" == *" $name "* ]] || return 0
    echo "== $name"
    timeout "$limit" "$@" > "$out/$name.log" 2>&1
    local rc=$?
    tail -n 25 "$out/$name.log"
    status+=("$name: exit $rc")
}

step tests 200 python3 -m pytest tests/cuda -q -rs -p no:cacheprovider
step wavegrad2_rtf 80 python3 benchmarks/wavegrad2_rtf.py --device cuda --steps 6 50 1000 --seconds 2 --repeats 3
step hierspeechpp_vc 120 python3 benchmarks/hierspeechpp_vc_speed.py --cuda --threads "$(nproc)" --seconds 5 \
    --repeats 3 --no-flops
step alias_free 60 python3 benchmarks/alias_free_gpu.py
echo "== summary"
printf '%s\n' "${status[@]}"
failed=$(printf '%s\n' "${status[@]}" | grep -vc ': exit 0$')
[ "$failed" -eq 0 ] || { echo "cuda_check: $failed step(s) failed; logs in $out" >&2; exit 1; }
