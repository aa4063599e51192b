#!/usr/bin/env bash
# WaveGrad 2 recipe: data -> manifests -> training -> few-step schedule search -> TTS -> evaluation.
# Same datasets, splits, options and stage conventions as egs/tts/vits/run.sh (shared data stages and lists).
set -euo pipefail

recipe_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$recipe_dir/../../utils/env.sh"
. "$repo_root/egs/utils/stage.sh"
. "$repo_root/egs/utils/corpus_setup.sh"

# ----------------------------------------------------------------------------------------------- options
corpus_recipe_options 5 2  # stages 0-5, 2 synthetic speakers (egs/utils/corpus_setup.sh)
train_args=""
infer_args=""
infer_steps=6
search_items=2
search_first="1e-5,1e-3"
search_penultimate="0.05,0.3"
recipe_options+=" train_args infer_args infer_steps search_items search_first search_penultimate"

help_message="$(cat <<EOF2
Usage: $0 [options]      (WaveGrad 2: data, training, schedule search, TTS, evaluation)

Stages (run the contiguous range --stage..--stop_stage; finished stages leave EXP_DIR/.done/stageN.*.done and
are skipped on a rerun; --force or deleting a marker reruns them):
  0 data         as the VITS / HierSpeech++ recipes (mini + synthetic speakers, public corpora, custom folder)
  1 manifests    JSONL manifests with seeded train/valid/test splits (the same splits as those recipes)
  2 train        train WaveGrad 2 (bins/train.py, duration-bucketed batches); durations from the internal
                 aligner (the corpora here carry none); speakers with transcripts become the speaker table
  3 schedule     search a --infer_steps schedule on the validation items (models/tts/wavegrad2/schedule_search.py)
  4 inference    TTS of the test sentences with their speakers (bins/infer.py), the searched schedule
  5 evaluation   WER/CER, speaker similarity, F0, MCD, ... -> EXP_DIR/eval/tts/summary.md

Options (defaults in brackets):
$(corpus_options_help wavegrad2)
  --seed N                   seed of the splits, training and sampling [$seed]
  --config FILE              WaveGrad 2 config [mini: conf/wavegrad2_tiny.json5; others: conf/wavegrad2_paper.json5]
  --infer_steps N            refinement steps of the searched schedule and of inference [$infer_steps]
  --search_items N           validation items scoring each candidate schedule [$search_items]
  --search_first LIST --search_penultimate LIST
                             comma-separated grids of beta_1 and beta_{N-1} [$search_first] [$search_penultimate]
  --synthetic_speakers N     mini only: synthetic espeak-ng/flite speakers to add, 0 for none [$synthetic_speakers]
  --download true|false      allow stage 0 to download public corpora [$download]
  --force                    rerun the selected stages even if their .done markers exist

Forwarding options to the Python CLIs:
  --a.b.c VALUE              any dotted key is a config override for stage 2, e.g. --train.max_steps 20
  --train_args "..."         extra overrides for stage 2's bins/train.py (e.g. "train.batching.max_seconds=48")
  --prepare_args "..." --infer_args "..." --eval_args "..."   stages 1, 4, 5
Any other option is rejected. Environment: ECHELON_PYTHON picks the interpreter [.venv/bin/python].

Example: $0 --dataset ljspeech --data_dir /data/LJSpeech-1.1 --stage 0 --stop_stage 2 --train.batching.max_seconds 120
EOF2
)"

. "$repo_root/egs/utils/parse_options.sh"
setup_corpus_recipe "wavegrad2_$dataset"
case "$infer_steps$search_items" in
    '' | *[!0-9]*) die "--infer_steps and --search_items take positive integers" ;;
esac
case "$dataset" in
    mini) default_config="$recipe_dir/conf/wavegrad2_tiny.json5" ;;
    *) default_config="$recipe_dir/conf/wavegrad2_paper.json5" ;;
esac
config="$(abspath "${config:-$default_config}")"
split_forward_args prepare train infer eval

# Shared data stages (stage_data, stage_manifests, train_model).
. "$repo_root/egs/utils/data_stages.sh"
. "$recipe_dir/local/stages.sh"
require_python_packages numpy soundfile json5 torch

log "dataset=$dataset data_dir=${data_dir:-?} exp_dir=$exp_dir stages $stage..$stop_stage ngpu=$ngpu"
[ ${#config_overrides[@]} -eq 0 ] || log "config overrides for training: ${config_overrides[*]}"

run_stage 0 data stage_data
run_stage 1 manifests stage_manifests
run_stage 2 train stage_train_wavegrad2
run_stage 3 schedule stage_schedule_wavegrad2
run_stage 4 inference stage_inference_wavegrad2
run_stage 5 evaluation stage_evaluation_wavegrad2

print_summary_wavegrad2
