# shellcheck shell=bash
# VITS-specific stages of egs/tts/vits/run.sh (sourced after the shared HierSpeech++ data stages).

# ------------------------------------------------------------------------------------------------ stage 2
stage_train_vits() {
    require_python_module models.tts.vits.trainer "the VITS trainer"
    require_command espeak-ng "phonemising the transcripts"
    build_speaker_table
    train_model vits "$config" "data.train_manifest=$manifests/train.jsonl" \
        "data.valid_manifest=$manifests/valid.jsonl" "${speaker_table[@]}" ${train_extra[@]+"${train_extra[@]}"}
}

# ------------------------------------------------------------------------------------------------ stage 3
stage_inference_vits() {
    local lists="$exp_dir/infer/lists" out="$exp_dir/infer" device
    device="$(infer_device "$ngpu")"
    require_python_module models.tts.vits.inference "the VITS inference pipeline"
    [ -d "$exp_dir/vits/checkpoints" ] || die "no trained VITS in $exp_dir/vits: run stage 2 first"
    make_tts_job_lists "$lists"
    if [ -s "$lists/tts_jobs.jsonl" ]; then
        py_module bins.infer --ckpt_dir "$exp_dir/vits" --device "$device" --jobs "$lists/tts_jobs.jsonl" \
            --output_dir "$out/tts" --seed "$seed" --overwrite ${infer_extra[@]+"${infer_extra[@]}"}
    fi
    if [ -s "$lists/vc_jobs.jsonl" ]; then
        py_module bins.infer --ckpt_dir "$exp_dir/vits" --device "$device" --jobs "$lists/vc_jobs.jsonl" \
            --output_dir "$out/vc" --seed "$seed" --overwrite ${infer_extra[@]+"${infer_extra[@]}"}
    fi
}

# ------------------------------------------------------------------------------------------------ stage 4
stage_evaluation_vits() {
    local kind lists="$exp_dir/infer/lists"
    require_python_module bins.evaluate "the evaluation CLI (echelon-evaluate)"
    for kind in tts vc; do
        [ -s "$lists/$kind.jsonl" ] && [ -d "$exp_dir/infer/$kind" ] || continue
        py_module bins.evaluate --system "vits_$kind=$exp_dir/infer/$kind" --manifest "$lists/$kind.jsonl" \
            --out_dir "$exp_dir/eval/$kind" ${eval_extra[@]+"${eval_extra[@]}"}
    done
}

print_summary_vits() {
    local kind
    for kind in tts vc; do
        [ -d "$exp_dir/infer/$kind" ] &&
            printf '  %-4s wavs: %s (%s files)\n' "$kind" "$exp_dir/infer/$kind" \
                "$(find "$exp_dir/infer/$kind" -name '*.wav' | wc -l | tr -d ' ')"
        [ -f "$exp_dir/eval/$kind/summary.md" ] && { echo; cat "$exp_dir/eval/$kind/summary.md"; }
    done
    return 0
}
