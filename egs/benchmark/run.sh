#!/usr/bin/env bash
# Benchmark recipe: every trained system on one test set with one set of prompts -> one report
# (EXP_DIR/report.html, report.md). The systems are discovered under --exp_root (every experiment of --dataset
# with a checkpoint of a registered TTS/VC pipeline, or a pipeline spec; evaluation/benchmark/discover.py) unless
# --systems or the benchmark file lists them; the work is done by echelon-benchmark (bins/benchmark.py).
set -euo pipefail

recipe_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$recipe_dir/../utils/env.sh"
. "$repo_root/egs/utils/stage.sh"
. "$repo_root/egs/utils/corpus_setup.sh"

# ----------------------------------------------------------------------------------------------- options
corpus_recipe_options 2 0  # stages 0-2, no synthetic speakers (the test split is real speech)
benchmark="$recipe_dir/conf/default.json5"
exp_root=exp
max_items=""
systems=""
benchmark_args=""
recipe_options+=" benchmark exp_root max_items systems benchmark_args"

help_message="$(cat <<EOF2
Usage: $0 [options]      (benchmark: every available system on one protocol, one HTML/Markdown report)

Stages (contiguous range --stage..--stop_stage; finished stages leave EXP_DIR/.done/stageN.*.done markers):
  0 data         as the other recipes (mini corpus, public corpora, custom folder of audio)
  1 manifests    the seeded train/valid/test split every recipe uses (same corpus + seed = same test set)
  2 benchmark    echelon-benchmark over the test split -> EXP_DIR/report.html, EXP_DIR/report.md

Options (defaults in brackets):
$(corpus_options_help benchmark)
  --seed N                   seed of the split and of the protocol's prompt choices [$seed]
  --benchmark FILE           the protocol, and the systems when it lists them [conf/default.json5: discovered;
                             make demo: conf/demo.json5]; @EXP_ROOT@, @DATASET@ in it = --exp_root, --dataset
  --exp_root DIR             where the other recipes wrote their experiments [$exp_root]
  --systems "NAME=SPEC ..."  run these systems (checkpoint dirs or pipeline specs) instead of discovering them
  --max_items N              test items per task [the benchmark file's protocol.max_items]
  --download true|false      allow stage 0 to download public corpora [$download]
  --force                    rerun the selected stages even if their .done markers exist
  --benchmark_args "..."     extra echelon-benchmark arguments, e.g. "--set evaluation.asr=pocketsphinx"
  --prepare_args "..."       extra arguments of stage 1's preparer
Any other option is rejected. Environment: ECHELON_PYTHON picks the interpreter [.venv/bin/python].

Example: $0 --dataset mini --exp_root exp --stage 0 --stop_stage 2
EOF2
)"

. "$repo_root/egs/utils/parse_options.sh"
setup_corpus_recipe "benchmark_$dataset"
benchmark="$(abspath "$benchmark")"
exp_root="$(abspath "$exp_root")"
[ -f "$benchmark" ] || die "--benchmark $benchmark: no such file"
check_config_files benchmark "benchmark=$benchmark"  # its schema, before stage 0 (egs/utils/corpus_setup.sh)
[ -z "$max_items" ] || case "$max_items" in *[!0-9]* | 0) die "--max_items takes a positive integer (got '$max_items')" ;; esac
for listed_system in $systems; do
    case "$listed_system" in ?*=?*) ;; *) die "--systems takes NAME=SPEC words (got '$listed_system')" ;; esac
done
split_forward_args prepare benchmark

. "$repo_root/egs/utils/data_stages.sh"  # stage_data, stage_manifests
require_python_packages numpy soundfile json5 torch

stage_benchmark() {
    local limit=() listed=() system
    [ -s "$manifests/test.jsonl" ] || die "no test split in $manifests: run stage 1 first"
    [ -z "$max_items" ] || limit=("protocol.max_items=$max_items")
    for system in $systems; do listed+=(--system "$system"); done
    # a rerun keeps the audio already generated (--force: everything again); failed items are in the report
    py_module bins.benchmark "$benchmark" --out_dir "$exp_dir" --var "EXP_ROOT=$exp_root" "DATASET=$dataset" \
        "$(rerun_flag)" --allow_failures \
        --set "protocol.manifest=$manifests/test.jsonl" "protocol.seed=$seed" ${limit[@]+"${limit[@]}"} \
        ${listed[@]+"${listed[@]}"} ${benchmark_extra[@]+"${benchmark_extra[@]}"}
}

log "benchmark: dataset=$dataset data_dir=$data_dir exp_dir=$exp_dir exp_root=$exp_root stages $stage..$stop_stage"
run_stage 0 data stage_data
run_stage 1 manifests stage_manifests
run_stage 2 benchmark stage_benchmark
[ ! -f "$exp_dir/report.html" ] || log "report: $exp_dir/report.html"
