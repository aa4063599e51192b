#!/usr/bin/env bash
# HierSpeech++ recipe: data -> manifests -> features -> synthesizer -> TTV -> SpeechSR -> TTS/VC -> evaluation.
# The stages only wrap Echelon's Python CLIs (bins/*, egs/*/local/*.py); all the work happens there.
set -euo pipefail

recipe_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$recipe_dir/../../utils/env.sh"
. "$repo_root/egs/utils/stage.sh"
. "$repo_root/egs/utils/corpus_setup.sh"

# ----------------------------------------------------------------------------------------------- options
corpus_recipe_options 7 2  # stages 0-7, 2 synthetic speakers (egs/utils/corpus_setup.sh)
nj=2
conf_set=auto
ttv_config=""
sr_config=""
ssl_model=auto
sr_train=auto
sr_weights=released
extract_args=""
synth_args=""
ttv_args=""
sr_args=""
vc_args=""
tts_args=""
recipe_options+=" nj conf_set ttv_config sr_config ssl_model sr_train sr_weights extract_args synth_args ttv_args
sr_args vc_args tts_args"

help_message="$(cat <<EOF
Usage: $0 [options]      (HierSpeech++: data, features, training, TTS/VC, 48 kHz SR, evaluation)

Stages (run the contiguous range --stage..--stop_stage; finished stages leave EXP_DIR/.done/stageN.*.done and
are skipped on a rerun; --force or deleting a marker reruns them):
  0 data         mini: check the bundled corpus, add synthetic espeak-ng/flite speakers (labelled synthetic);
                 ljspeech|vctk|libritts: use DATA_DIR, or download into it when the URL is reachable;
                 custom: a folder of audio (DATA_DIR, required)
  1 manifests    JSONL manifests with seeded train/valid/test splits
  2 features     SSL (layer 7), log-F0 (YAAPT) and spectrogram features; picks the SSL model (see --ssl_model)
  3 synth        train the hierarchical synthesizer                      (bins/train.py)
  4 ttv          train Text-to-Vec (skipped, saying so, when the corpus has no transcripts)
  5 speechsr     SpeechSR: the released 16->48 kHz weights, and/or train one (--sr_train)
  6 inference    TTS and voice conversion over the test split, 48 kHz upsampling of a real clip
  7 evaluation   WER/CER, speaker similarity, F0 Pearson/RMSE, ... -> EXP_DIR/eval/results.md

Options (defaults in brackets):
$(corpus_options_help hierspeechpp)
  --nj N                     parallel jobs for feature extraction [$nj]
  --seed N                   seed of the splits, training and sampling [$seed]
  --conf_set auto|tiny|full  default configs: tiny = conf/*_tiny.json5 (CPU, a few dozen steps), full =
                             conf/{synth,ttv,speechsr}.json5 [auto: tiny for mini or without a GPU, else full]
  --config FILE              synthesizer config [conf/synth.json5 or conf/synth_tiny.json5]
  --ttv_config FILE          TTV config [conf/ttv.json5 or conf/ttv_tiny.json5]
  --sr_config FILE           SpeechSR training config [conf/speechsr.json5 or conf/speechsr_tiny.json5]
  --ssl_model ID|DIR|auto|random   SSL model: auto = facebook/mms-300m when cached or reachable, else a small
                             RANDOMLY INITIALISED wav2vec 2.0 (announced; fine for plumbing, not for quality) [$ssl_model]
  --sr_train auto|true|false train a SpeechSR in stage 5 [auto: true for mini (tiny, a few steps), else false]
  --sr_weights released|trained   SpeechSR used for 48 kHz output in stage 6 [$sr_weights]
  --synthetic_speakers N     mini only: synthetic espeak-ng/flite speakers to add, 0 for none [$synthetic_speakers]
  --download true|false      allow stage 0 to download public corpora [$download]
  --force                    rerun the selected stages even if their .done markers exist

Forwarding options to the Python CLIs:
  --a.b.c VALUE              any dotted key is a config override given to every training stage (3, 4, 5),
                             e.g. --train.max_steps 20 --train.batch_size 4
  --synth_args "..."         extra arguments for stage 3's bins/train.py (e.g. "model.hidden_channels=64")
  --ttv_args "..." --sr_args "..."   the same for stages 4 and 5
  --prepare_args "..." --extract_args "..."   stage 1 (preparer key=value) and 2 (bins/extract_features.py)
  --vc_args "..." --tts_args "..."   stage 6: the VC and the TTS command lines (bins/infer.py)
  --eval_args "..."          stage 7 (bins/evaluate.py), e.g. "--asr whisper --asr_model DIR"
Any other option is rejected. Environment: ECHELON_PYTHON picks the interpreter [.venv/bin/python].

Example: $0 --dataset custom --data_dir /path/to/wavs --stage 0 --stop_stage 3 --train.max_steps 2000
EOF
)"

. "$repo_root/egs/utils/parse_options.sh"
# Checks the shared options, makes paths absolute, checks EXP_DIR against the corpus it is bound to (written when
# the first stage starts, after every option check: EXP_DIR/recipe_settings; later stages need not repeat
# --data_dir), picks the default corpus location and sets manifests.
setup_corpus_recipe "hierspeechpp_$dataset"
case "$nj" in *[!0-9]* | "" | 0) die "--nj takes a positive integer (got '$nj')" ;; esac
case "$sr_train" in auto) [ "$dataset" = mini ] && sr_train=true || sr_train=false ;; true | false) ;;
    *) die "--sr_train takes auto, true or false (got '$sr_train')" ;;
esac
case "$sr_weights" in released | trained) ;; *) die "--sr_weights takes released or trained (got '$sr_weights')" ;; esac

# Configuration set: full-size models need a GPU, so a CPU-only run trains the tiny ones unless told otherwise.
case "$conf_set" in
    tiny | full) ;;
    auto)
        if [ "$dataset" = mini ]; then
            conf_set=tiny
        elif [ "$(infer_device "$ngpu")" = cuda ]; then
            conf_set=full
        else
            conf_set=tiny
            if [ "$stage" -le 5 ] && [ "$stop_stage" -ge 3 ]; then
                announce "no GPU in use: training the TINY configurations (conf/*_tiny.json5, a few dozen steps);" \
                    "pass --conf_set full (or --config/--ttv_config/--sr_config) for full-size models"
            fi
        fi ;;
    *) die "--conf_set takes auto, tiny or full (got '$conf_set')" ;;
esac
tiny=""
[ "$conf_set" = tiny ] && tiny="_tiny"
config="$(abspath "${config:-$recipe_dir/conf/synth$tiny.json5}")"
ttv_config="$(abspath "${ttv_config:-$recipe_dir/conf/ttv$tiny.json5}")"
sr_config="$(abspath "${sr_config:-$recipe_dir/conf/speechsr$tiny.json5}")"

# Split the --*_args strings into words (quotes inside them are not interpreted: keep values free of spaces).
split_forward_args prepare extract synth ttv sr vc tts eval
features="$exp_dir/features"

. "$recipe_dir/local/stages.sh"
# Every stage runs Python; find missing packages before any work is done.
require_python_packages numpy soundfile json5 torch

log "dataset=$dataset data_dir=${data_dir:-?} exp_dir=$exp_dir stages $stage..$stop_stage ngpu=$ngpu"
[ ${#config_overrides[@]} -eq 0 ] || log "config overrides for training stages: ${config_overrides[*]}"

run_stage 0 data stage_data
run_stage 1 manifests stage_manifests
run_stage 2 features stage_features
run_stage 3 synth stage_train_synth
run_stage 4 ttv stage_train_ttv
run_stage 5 speechsr stage_speechsr
run_stage 6 inference stage_inference
run_stage 7 evaluation stage_evaluation

print_summary
