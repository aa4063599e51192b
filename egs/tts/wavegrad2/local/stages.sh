# shellcheck shell=bash
# WaveGrad 2 stages of egs/tts/wavegrad2/run.sh (sourced after the shared data stages). The speaker table and the
# job lists are the VITS recipe's (same manifests, same evaluation lists), so the systems compare item for item.

# ------------------------------------------------------------------------------------------------ stage 2
stage_train_wavegrad2() {
    local overrides=() table line
    require_python_module models.tts.wavegrad2.trainer "the WaveGrad 2 trainer"
    require_command espeak-ng "phonemising the transcripts"
    table="$("$python" "$repo_root/egs/tts/vits/local/speakers.py" --manifest "$manifests/train.jsonl")" ||
        die "could not build the speaker table from $manifests/train.jsonl"
    while IFS= read -r line; do [ -z "$line" ] || overrides+=("$line"); done <<<"$table"
    [ ${#overrides[@]} -gt 0 ] || die "no speaker table for $manifests/train.jsonl (are there transcripts?)"
    printf '%s\n' "${overrides[@]}" >"$exp_dir/speaker_overrides"
    log "speaker table: ${overrides[*]}"
    train_model wavegrad2 "$config" "data.train_manifest=$manifests/train.jsonl" \
        "data.valid_manifest=$manifests/valid.jsonl" "${overrides[@]}" ${train_extra[@]+"${train_extra[@]}"}
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
    local lists="$exp_dir/infer/lists" out="$exp_dir/infer" device speakers schedule
    device="$(infer_device "$ngpu")"
    require_python_module models.tts.wavegrad2.inference "the WaveGrad 2 inference pipeline"
    [ -d "$exp_dir/wavegrad2/checkpoints" ] || die "no trained WaveGrad 2 in $exp_dir/wavegrad2: run stage 2 first"
    schedule="$exp_dir/wavegrad2/schedule_${infer_steps}.json"
    [ -f "$schedule" ] || { log "no searched schedule ($schedule): using $infer_steps steps"; schedule=""; }
    speakers="$(sed -n 's/^data\.speakers=//p' "$exp_dir/speaker_overrides")"
    "$python" "$repo_root/egs/tts/hierspeechpp/local/make_eval_lists.py" --manifest_dir "$manifests" \
        --out_dir "$lists/shared" --seed "$seed"
    "$python" "$repo_root/egs/tts/vits/local/make_jobs.py" --lists "$lists/shared" \
        --test_manifest "$manifests/test.jsonl" --speakers "${speakers:-[]}" --out_dir "$lists"
    [ -s "$lists/tts_jobs.jsonl" ] || die "no TTS jobs in $lists (does the test split have transcripts?)"
    if [ -n "$schedule" ]; then
        py_module bins.infer --ckpt_dir "$exp_dir/wavegrad2" --device "$device" --jobs "$lists/tts_jobs.jsonl" \
            --output_dir "$out/tts" --seed "$seed" --overwrite --schedule "$schedule" ${infer_extra[@]+"${infer_extra[@]}"}
    else
        py_module bins.infer --ckpt_dir "$exp_dir/wavegrad2" --device "$device" --jobs "$lists/tts_jobs.jsonl" \
            --output_dir "$out/tts" --seed "$seed" --overwrite --steps "$infer_steps" ${infer_extra[@]+"${infer_extra[@]}"}
    fi
}

# ------------------------------------------------------------------------------------------------ stage 5
stage_evaluation_wavegrad2() {
    local lists="$exp_dir/infer/lists"
    require_python_module bins.evaluate "the evaluation CLI (echelon-evaluate)"
    [ -s "$lists/tts.jsonl" ] && [ -d "$exp_dir/infer/tts" ] || die "no TTS outputs to evaluate: run stage 4 first"
    py_module bins.evaluate --system "wavegrad2_tts=$exp_dir/infer/tts" --manifest "$lists/tts.jsonl" \
        --out_dir "$exp_dir/eval/tts" ${eval_extra[@]+"${eval_extra[@]}"}
}

print_summary_wavegrad2() {
    [ -d "$exp_dir/infer/tts" ] &&
        printf '  tts wavs: %s (%s files)\n' "$exp_dir/infer/tts" \
            "$(find "$exp_dir/infer/tts" -name '*.wav' | wc -l | tr -d ' ')"
    [ -f "$exp_dir/eval/tts/summary.md" ] && { echo; cat "$exp_dir/eval/tts/summary.md"; }
    return 0
}
