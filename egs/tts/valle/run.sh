#!/usr/bin/env bash
# VALL-E recipe: data -> manifests -> phonemes + codec codes -> training -> zero-shot TTS + continuation ->
# evaluation. Same datasets, splits, options and stage conventions as egs/tts/{hierspeechpp,vits}/run.sh (the
# data and manifest stages are shared, egs/utils/data_stages.sh); the stages only wrap Python CLIs.
set -euo pipefail

recipe_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$recipe_dir/../../utils/env.sh"
. "$repo_root/egs/utils/stage.sh"
. "$repo_root/egs/utils/corpus_setup.sh"

# ----------------------------------------------------------------------------------------------- options
corpus_recipe_options 5 0  # stages 0-5, no synthetic speakers (egs/utils/corpus_setup.sh)
codec=auto
features_args=""
train_args=""
infer_args=""
recipe_options+=" codec features_args train_args infer_args"

help_message="$(cat <<EOF2
Usage: $0 [options]      (VALL-E: codec language model, zero-shot TTS from a prompt and its transcript)

Stages (run the contiguous range --stage..--stop_stage; finished stages leave EXP_DIR/.done/stageN.*.done and
are skipped on a rerun; --force or deleting a marker reruns them):
  0 data         as the HierSpeech++ recipe (mini corpus, public corpora, custom folder)
  1 manifests    JSONL manifests with seeded train/valid/test splits (the HierSpeech++ recipe's splits)
  2 features     espeak phoneme tokens, the symbol table and EnCodec codes (models/tts/valle/prepare.py)
  3 train        train VALL-E (bins/train.py; train.train_stage 0 = AR + NAR jointly)
  4 inference    cross-sentence zero-shot TTS (prompt = another clip of the speaker + its transcript) and
                 continuation (first 3 s of the test clip + its transcript) (bins/infer.py)
  5 evaluation   WER/CER, speaker similarity, ... -> EXP_DIR/eval/results.md

Options (defaults in brackets):
$(corpus_options_help valle)
  --seed N                   seed of the splits, training and sampling [$seed]
  --config FILE              VALL-E config [mini: conf/valle_tiny.json5; others: conf/valle_libritts.json5]
  --codec NAME               facebook/encodec_24khz, a local folder, or tiny-random (random weights: pipeline
                             checks only) [auto: tiny-random for mini, facebook/encodec_24khz otherwise]
  --download true|false      allow stage 0 to download public corpora [$download]
  --force                    rerun the selected stages even if their .done markers exist

Forwarding options to the Python CLIs:
  --a.b.c VALUE              any dotted key is a config override for stage 3, e.g. --train.max_steps 20
  --train_args "..."         extra overrides for stage 3's bins/train.py (e.g. "train.batching.max_seconds=60")
  --prepare_args "..." --features_args "..." --infer_args "..." --eval_args "..."   stages 1, 2, 4, 5
Any other option is rejected. Environment: ECHELON_PYTHON picks the interpreter [.venv/bin/python].

Example: $0 --dataset mini --stage 0 --stop_stage 5 --train.max_steps 20
EOF2
)"

. "$repo_root/egs/utils/parse_options.sh"
setup_corpus_recipe "valle_$dataset"
case "$dataset" in
    mini) default_config="$recipe_dir/conf/valle_tiny.json5" ;;
    *) default_config="$recipe_dir/conf/valle_libritts.json5" ;;
esac
config="$(abspath "${config:-$default_config}")"
if [ "$codec" = auto ]; then
    case "$dataset" in mini) codec=tiny-random ;; *) codec=facebook/encodec_24khz ;; esac
fi
split_forward_args prepare features train infer eval

. "$repo_root/egs/utils/data_stages.sh"
. "$recipe_dir/local/stages.sh"
require_python_packages numpy soundfile json5 torch transformers

log "dataset=$dataset data_dir=${data_dir:-?} exp_dir=$exp_dir codec=$codec stages $stage..$stop_stage ngpu=$ngpu"
[ "$codec" != tiny-random ] || log "codec: TINY RANDOM EnCodec (random weights): outputs check the pipeline, not VALL-E"
[ ${#config_overrides[@]} -eq 0 ] || log "config overrides for training: ${config_overrides[*]}"

run_stage 0 data stage_data
run_stage 1 manifests stage_manifests
run_stage 2 features stage_features_valle
run_stage 3 train stage_train_valle
run_stage 4 inference stage_inference_valle
run_stage 5 evaluation stage_evaluation_valle

print_summary_valle
