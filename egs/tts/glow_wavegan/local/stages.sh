# shellcheck shell=bash
# Glow-WaveGAN stages of egs/tts/glow_wavegan/run.sh (sourced after the shared data stages).

# ------------------------------------------------------------------------------------------------ stage 2
# Stage-1 WaveGAN on every clip of the train split (audio only: clips without transcripts are used too).
# train_model appends the recipe's dotted overrides, which belong to stage 4: run this one without them.
stage_train_vae() {
    require_python_module models.tts.glow_wavegan.trainer_vae "the Glow-WaveGAN stage-1 trainer"
    local config_overrides=()
    train_model stage1 "$vae_config" "data.train_manifest=$manifests/train.jsonl" \
        "data.valid_manifest=$manifests/valid.jsonl" ${vae_extra[@]+"${vae_extra[@]}"}
}

# ------------------------------------------------------------------------------------------------ stage 3
stage_latents() {
    [ -d "$exp_dir/stage1/checkpoints" ] || die "no trained stage 1 in $exp_dir/stage1: run stage 2 first"
    # The registered feature glow_wavegan_latent through the generic driver; --overwrite: a rerun of stage 2
    # makes a new checkpoint, whose latents must replace the old ones.
    py_module bins.extract_features --manifest "$manifests/train.jsonl" --manifest "$manifests/valid.jsonl" \
        --manifest "$manifests/test.jsonl" --out_dir "$exp_dir/features" --features glow_wavegan_latent \
        --set "glow_wavegan_latent.stage1_ckpt=$exp_dir/stage1" --device "$(infer_device "$ngpu")" --overwrite \
        --allow_failures
    [ ! -s "$exp_dir/features/bad_items.tsv" ] ||
        log "some items have no latents (stage 4 skips them): $exp_dir/features/bad_items.tsv"
}

# ------------------------------------------------------------------------------------------------ stage 4
stage_train_glow() {
    require_python_module models.tts.glow_wavegan.trainer "the Glow-WaveGAN stage-2 trainer"
    require_command espeak-ng "phonemising the transcripts"
    [ -f "$exp_dir/features/glow_wavegan_latent/feature.json" ] || die "no latents in $exp_dir/features: run stage 3 first"
    build_speaker_table
    train_model stage2 "$config" "data.train_manifest=$manifests/train.jsonl" \
        "data.valid_manifest=$manifests/valid.jsonl" "data.features_dir=$exp_dir/features" \
        "data.stage1_ckpt=$exp_dir/stage1" "${speaker_table[@]}" ${train_extra[@]+"${train_extra[@]}"}
}

# ------------------------------------------------------------------------------------------------ stage 5
stage_inference_glow_wavegan() {
    local lists="$exp_dir/infer/lists"
    require_python_module models.tts.glow_wavegan.inference "the Glow-WaveGAN inference pipeline"
    [ -d "$exp_dir/stage2/checkpoints" ] || die "no trained stage 2 in $exp_dir/stage2: run stage 4 first"
    make_tts_job_lists "$lists"
    [ -s "$lists/tts_jobs.jsonl" ] || die "no TTS jobs in $lists (see $lists/skipped.tsv)"
    rm -rf "$exp_dir/infer/tts"
    # the two-checkpoint pipeline glow_wavegan: stage 2 (acoustic) + the stage-1 decoder
    py_module bins.infer --ckpt_dir "$exp_dir/stage2" --component "decoder=$exp_dir/stage1" \
        --device "$(infer_device "$ngpu")" --jobs "$lists/tts_jobs.jsonl" --output_dir "$exp_dir/infer/tts" \
        --seed "$seed" ${infer_extra[@]+"${infer_extra[@]}"}
}

# ------------------------------------------------------------------------------------------------ stage 6
stage_evaluation_glow_wavegan() {
    local out="$exp_dir/eval" lists="$exp_dir/infer/lists" results
    require_python_module bins.evaluate "the evaluation CLI (echelon-evaluate)"
    [ -s "$lists/tts.jsonl" ] && [ -d "$exp_dir/infer/tts" ] || die "no TTS outputs in $exp_dir/infer: run stage 5"
    results="$out/results.md"
    mkdir -p "$out"
    {
        echo "# Glow-WaveGAN recipe results: dataset $dataset"
        echo
        echo "Experiment: \`$exp_dir\` (seed $seed). Metrics and their definitions: evaluation/README.md."
    } >"$results.tmp"
    evaluate_kind glow_wavegan_tts tts "TTS (test-split text; reference = the real recording)" \
        "$out" "$(infer_device "$ngpu")" "$results.tmp"
    mv -f "$results.tmp" "$results"
}

print_summary_glow_wavegan() {
    [ -d "$exp_dir/infer/tts" ] &&
        printf '  tts wavs: %s (%s files)\n' "$exp_dir/infer/tts" "$(find "$exp_dir/infer/tts" -name '*.wav' | wc -l | tr -d ' ')"
    [ -f "$exp_dir/eval/results.md" ] && { printf '  table:    %s\n\n' "$exp_dir/eval/results.md"; cat "$exp_dir/eval/results.md"; }
    return 0
}
