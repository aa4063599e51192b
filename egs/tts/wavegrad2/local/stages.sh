# shellcheck shell=bash
# WaveGrad 2 stages of egs/tts/wavegrad2/run.sh (sourced after the shared data stages). The speaker table and the
# job lists are the VITS recipe's (same manifests, same evaluation lists), so the systems compare item for item.

# ------------------------------------------------------------------------------------------------ stage 2
stage_train_wavegrad2() {
    require_python_module models.tts.wavegrad2.trainer "the WaveGrad 2 trainer"
    require_command espeak-ng "phonemising the transcripts"
    build_speaker_table
    train_model wavegrad2 "$config" "data.train_manifest=$manifests/train.jsonl" \
        "data.valid_manifest=$manifests/valid.jsonl" "${speaker_table[@]}" ${train_extra[@]+"${train_extra[@]}"}
}

# ------------------------------------------------------------------------------------------------ stage 3
# Few-step schedule search on the validation items (written as a schedule file stage 4 uses).
stage_schedule_wavegrad2() {
    [ -d "$exp_dir/wavegrad2/checkpoints" ] || die "no trained WaveGrad 2 in $exp_dir/wavegrad2: run stage 2 first"
    py_module models.tts.wavegrad2.schedule_search --ckpt_dir "$exp_dir/wavegrad2" \
        --manifest "$manifests/valid.jsonl" --steps "$infer_steps" --max_items "$search_items" \
        --first_betas "$search_first" --penultimate_betas "$search_penultimate" --seed "$seed" \
        --output "$exp_dir/wavegrad2/schedule_${infer_steps}.json"
}

# ------------------------------------------------------------------------------------------------ stage 4
stage_inference_wavegrad2() {
    local lists="$exp_dir/infer/lists" out="$exp_dir/infer" device schedule steps=()
    device="$(infer_device "$ngpu")"
    require_python_module models.tts.wavegrad2.inference "the WaveGrad 2 inference pipeline"
    [ -d "$exp_dir/wavegrad2/checkpoints" ] || die "no trained WaveGrad 2 in $exp_dir/wavegrad2: run stage 2 first"
    schedule="$exp_dir/wavegrad2/schedule_${infer_steps}.json"
    [ -f "$schedule" ] || { log "no searched schedule ($schedule): using $infer_steps steps"; schedule=""; }
    make_tts_job_lists "$lists"
    [ -s "$lists/tts_jobs.jsonl" ] || die "no TTS jobs in $lists (does the test split have transcripts?)"
    if [ -n "$schedule" ]; then steps=(--schedule "$schedule"); else steps=(--steps "$infer_steps"); fi
    py_module bins.infer --ckpt_dir "$exp_dir/wavegrad2" --device "$device" --jobs "$lists/tts_jobs.jsonl" \
        --output_dir "$out/tts" --seed "$seed" --overwrite "${steps[@]}" ${infer_extra[@]+"${infer_extra[@]}"}
}

# ------------------------------------------------------------------------------------------------ stage 5
stage_evaluation_wavegrad2() {
    local out="$exp_dir/eval" results="$exp_dir/eval/results.md"
    require_python_module bins.evaluate "the evaluation CLI (echelon-evaluate)"
    [ -s "$exp_dir/infer/lists/tts.jsonl" ] && [ -d "$exp_dir/infer/tts" ] ||
        die "no TTS outputs to evaluate: run stage 4 first"
    mkdir -p "$out"
    {
        echo "# WaveGrad 2 recipe results: dataset $dataset"
        echo
        echo "Experiment: \`$exp_dir\` (seed $seed). Metrics and their definitions: evaluation/README.md."
    } >"$results.tmp"
    evaluate_kind wavegrad2_tts tts "TTS (test-split text; reference = the real recording)" \
        "$out" "$(infer_device "$ngpu")" "$results.tmp"
    mv -f "$results.tmp" "$results"
}

print_summary_wavegrad2() {
    [ -d "$exp_dir/infer/tts" ] &&
        printf '  tts wavs: %s (%s files)\n' "$exp_dir/infer/tts" \
            "$(find "$exp_dir/infer/tts" -name '*.wav' | wc -l | tr -d ' ')"
    [ -f "$exp_dir/eval/results.md" ] && { printf '  table:    %s\n\n' "$exp_dir/eval/results.md"; cat "$exp_dir/eval/results.md"; }
    return 0
}
