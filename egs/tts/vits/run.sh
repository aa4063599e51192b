#!/usr/bin/env bash
# VITS recipe (baseline for HierSpeech++): data -> manifests -> training -> TTS/VC -> evaluation.
# Same datasets, options and stage conventions as egs/tts/hierspeechpp/run.sh; the data and manifest stages are
# shared (egs/utils/data_stages.sh), so both systems train and test on identical splits.
set -euo pipefail

recipe_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$recipe_dir/../../utils/env.sh"
. "$repo_root/egs/utils/stage.sh"
. "$repo_root/egs/utils/corpus_setup.sh"

# ----------------------------------------------------------------------------------------------- options
corpus_recipe_options 4 2  # stages 0-4, 2 synthetic speakers (egs/utils/corpus_setup.sh)
train_args=""
infer_args=""
recipe_options+=" train_args infer_args"

help_message="$(cat <<EOF2
Usage: $0 [options]      (VITS: data, training, TTS and voice conversion between speakers, evaluation)

Stages (run the contiguous range --stage..--stop_stage; finished stages leave EXP_DIR/.done/stageN.*.done and
are skipped on a rerun; --force or deleting a marker reruns them):
  0 data         as the HierSpeech++ recipe (mini + synthetic speakers, public corpora, custom folder)
  1 manifests    JSONL manifests with seeded train/valid/test splits (the HierSpeech++ recipe's splits)
  2 train        train VITS (bins/train.py); speakers with transcripts become the speaker table
  3 inference    TTS of the test sentences with their speakers, VC between speakers (bins/infer.py)
  4 evaluation   WER/CER, speaker similarity, F0, MCD, ... -> EXP_DIR/eval/{tts,vc}/summary.md

Options (defaults in brackets):
$(corpus_options_help vits)
  --seed N                   seed of the splits, training and sampling [$seed]
  --config FILE              VITS config [mini: conf/vits_tiny.json5; ljspeech: conf/vits_ljspeech.json5;
                             others: conf/vits_multispeaker.json5]
  --synthetic_speakers N     mini only: synthetic espeak-ng/flite speakers to add, 0 for none [$synthetic_speakers]
  --download true|false      allow stage 0 to download public corpora [$download]
  --force                    rerun the selected stages even if their .done markers exist

Forwarding options to the Python CLIs:
  --a.b.c VALUE              any dotted key is a config override for stage 2, e.g. --train.max_steps 20
  --train_args "..."         extra overrides for stage 2's bins/train.py (e.g. "train.batch_size=8")
  --prepare_args "..." --infer_args "..." --eval_args "..."   stages 1, 3, 4
Any other option is rejected. Environment: ECHELON_PYTHON picks the interpreter [.venv/bin/python].

Example: $0 --dataset vctk --data_dir /data/VCTK-Corpus-0.92 --stage 0 --stop_stage 2 --train.batch_size 32
EOF2
)"

. "$repo_root/egs/utils/parse_options.sh"
setup_corpus_recipe "vits_$dataset"
case "$dataset" in
    mini) default_config="$recipe_dir/conf/vits_tiny.json5" ;;
    ljspeech) default_config="$recipe_dir/conf/vits_ljspeech.json5" ;;
    *) default_config="$recipe_dir/conf/vits_multispeaker.json5" ;;
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
run_stage 2 train stage_train_vits
run_stage 3 inference stage_inference_vits
run_stage 4 evaluation stage_evaluation_vits

print_summary_vits
