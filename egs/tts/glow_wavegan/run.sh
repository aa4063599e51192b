#!/usr/bin/env bash
# Glow-WaveGAN recipe: data -> manifests -> stage-1 VAE-GAN -> latent extraction -> stage-2 Glow-TTS on the
# latents -> TTS with the two checkpoints -> evaluation. Same datasets, options and stage conventions as
# egs/tts/vits/run.sh (shared data/manifest stages of egs/utils/data_stages.sh, so systems share splits).
set -euo pipefail

recipe_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$recipe_dir/../../utils/env.sh"
. "$repo_root/egs/utils/stage.sh"
. "$repo_root/egs/utils/corpus_setup.sh"

# ----------------------------------------------------------------------------------------------- options
corpus_recipe_options 6 0  # stages 0-6, no synthetic speakers by default (egs/utils/corpus_setup.sh)
vae_config=""
train_args=""
vae_args=""
infer_args=""
recipe_options+=" vae_config train_args vae_args infer_args"

help_message="$(cat <<EOF2
Usage: $0 [options]      (Glow-WaveGAN: stage-1 WaveGAN VAE, stage-2 Glow-TTS on its latents, TTS, evaluation)

Stages (run the contiguous range --stage..--stop_stage; finished stages leave EXP_DIR/.done/stageN.*.done and
are skipped on a rerun; --force or deleting a marker reruns them):
  0 data         as the VITS / HierSpeech++ recipes (mini corpus, public corpora, custom folder)
  1 manifests    JSONL manifests with seeded train/valid/test splits (the shared splits)
  2 stage1       train the WaveGAN VAE on audio only (bins/train.py) -> EXP_DIR/stage1
  3 latents      posterior (mean, log_std) of every clip from the frozen encoder (registered feature
                 glow_wavegan_latent, bins/extract_features.py) -> EXP_DIR/features
  4 stage2       train Glow-TTS on the latents (a fresh sample per step) -> EXP_DIR/stage2
  5 inference    TTS of the test sentences: stage 2 -> latent -> stage-1 decoder (bins/infer.py)
  6 evaluation   WER/CER, speaker similarity, F0, MCD, ... -> EXP_DIR/eval/results.md

Options (defaults in brackets):
$(corpus_options_help glow_wavegan)
  --seed N                   seed of the splits, training and sampling [$seed]
  --vae_config FILE          stage-1 config [mini: conf/vae_tiny.json5; ljspeech: conf/vae_ljspeech.json5;
                             others: conf/vae_multispeaker.json5]
  --config FILE              stage-2 config [mini: conf/glow_tiny.json5; ljspeech: conf/glow_ljspeech.json5;
                             others: conf/glow_multispeaker.json5]
  --synthetic_speakers N     mini only: synthetic espeak-ng/flite speakers to add [$synthetic_speakers]
  --download true|false      allow stage 0 to download public corpora [$download]
  --force                    rerun the selected stages even if their .done markers exist

Forwarding options to the Python CLIs:
  --a.b.c VALUE              any dotted key is a config override for stage 4 (stage 2 of the model), e.g.
                             --train.max_steps 20
  --vae_args "..."           overrides for stage 2's bins/train.py (e.g. "train.batch_size=8")
  --train_args "..."         extra overrides for stage 4's bins/train.py
  --prepare_args "..." --infer_args "..." --eval_args "..."   stages 1, 5, 6 (e.g. --infer_args "--noise_scale 0.5")
Any other option is rejected. Environment: ECHELON_PYTHON picks the interpreter [.venv/bin/python].

Example: $0 --dataset ljspeech --data_dir /data/LJSpeech-1.1 --stage 0 --stop_stage 4 --ngpu 1
EOF2
)"

. "$repo_root/egs/utils/parse_options.sh"
setup_corpus_recipe "glow_wavegan_$dataset"
case "$dataset" in
    mini) default_vae="$recipe_dir/conf/vae_tiny.json5" default_config="$recipe_dir/conf/glow_tiny.json5" ;;
    ljspeech) default_vae="$recipe_dir/conf/vae_ljspeech.json5" default_config="$recipe_dir/conf/glow_ljspeech.json5" ;;
    *) default_vae="$recipe_dir/conf/vae_multispeaker.json5" default_config="$recipe_dir/conf/glow_multispeaker.json5" ;;
esac
vae_config="$(abspath "${vae_config:-$default_vae}")"
config="$(abspath "${config:-$default_config}")"
split_forward_args prepare train vae infer eval

# Shared data stages (stage_data, stage_manifests, train_model).
. "$repo_root/egs/utils/data_stages.sh"
. "$recipe_dir/local/stages.sh"
require_python_packages numpy soundfile json5 torch

log "dataset=$dataset data_dir=${data_dir:-?} exp_dir=$exp_dir stages $stage..$stop_stage ngpu=$ngpu"
[ ${#config_overrides[@]} -eq 0 ] || log "config overrides for stage-2 training: ${config_overrides[*]}"

run_stage 0 data stage_data
run_stage 1 manifests stage_manifests
run_stage 2 stage1 stage_train_vae
run_stage 3 latents stage_latents
run_stage 4 stage2 stage_train_glow
run_stage 5 inference stage_inference_glow_wavegan
run_stage 6 evaluation stage_evaluation_glow_wavegan

print_summary_glow_wavegan
