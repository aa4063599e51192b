#!/usr/bin/env bash
# Glow-WaveGAN recipe on the TTS template (egs/TEMPLATE/tts/run.sh): data -> manifests -> stage-1 VAE-GAN ->
# latent extraction -> stage-2 Glow-TTS on the latents -> TTS with the two checkpoints -> evaluation.
recipe() {
    family=glow_wavegan title=Glow-WaveGAN model_dir=stage2 train_stage=stage2
    about="stage-1 WaveGAN VAE, stage-2 Glow-TTS on its latents, TTS, evaluation"
    stages="data
manifests
stage1       train the WaveGAN VAE on audio only (bins/train.py) -> EXP_DIR/stage1
latents      posterior (mean, log_std) of every clip from the frozen encoder (registered feature
             glow_wavegan_latent, bins/extract_features.py) -> EXP_DIR/features
stage2       train Glow-TTS on the latents (a fresh sample per step) -> EXP_DIR/stage2
inference    TTS of the test sentences: stage 2 -> latent -> stage-1 decoder (bins/infer.py)
evaluation"
    recipe_config vae_config "stage-1 config" mini=conf/vae_tiny.json5 ljspeech=conf/vae_ljspeech.json5 \
        "*=conf/vae_multispeaker.json5"
    recipe_config config "stage-2 config" mini=conf/glow_tiny.json5 ljspeech=conf/glow_ljspeech.json5 \
        "*=conf/glow_multispeaker.json5"
    recipe_args vae "overrides for stage 2's bins/train.py (dotted keys go to stage 4 only)"
}

stage_stage1() { # audio only (clips without transcripts count too); the dotted overrides belong to stage 4
    local config_overrides=()
    train_model stage1 "$vae_config" "data.train_manifest=$manifests/train.jsonl" \
        "data.valid_manifest=$manifests/valid.jsonl" ${vae_extra[@]+"${vae_extra[@]}"}
}

stage_latents() { # --overwrite: a rerun of stage 2 makes a new checkpoint, whose latents replace the old ones
    [ -d "$exp_dir/stage1/checkpoints" ] || die "no trained stage 1 in $exp_dir/stage1: run stage 2 first"
    py_module bins.extract_features --manifest "$manifests/train.jsonl" --manifest "$manifests/valid.jsonl" \
        --manifest "$manifests/test.jsonl" --out_dir "$features" --features glow_wavegan_latent \
        --set "glow_wavegan_latent.stage1_ckpt=$exp_dir/stage1" --device "$(infer_device "$ngpu")" --overwrite \
        --allow_failures
    [ ! -s "$features/bad_items.tsv" ] || log "some items have no latents (stage 4 skips them): $features/bad_items.tsv"
}

stage_stage2() {
    [ -f "$features/glow_wavegan_latent/feature.json" ] || die "no latents in $features: run stage 3 first"
    tts_train "data.features_dir=$features" "data.stage1_ckpt=$exp_dir/stage1"
}

stage_inference() { tts_inference --component "decoder=$exp_dir/stage1"; }
. "$(dirname "${BASH_SOURCE[0]}")/../../TEMPLATE/tts/run.sh"
