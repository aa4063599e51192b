# shellcheck shell=bash
# VALL-E-specific stages of egs/tts/valle/run.sh (sourced after the shared data stages).

features="$exp_dir/features"

# ------------------------------------------------------------------------------------------------ stage 2
stage_features_valle() {
    require_python_module models.tts.valle.prepare "the VALL-E feature preparation"
    require_command espeak-ng "phonemising the transcripts"
    # The symbol table covers the transcripts of every split (text only): a tiny corpus's training split
    # alone misses phonemes that its test sentences use.
    py_module models.tts.valle.prepare --manifests "$manifests/train.jsonl" "$manifests/valid.jsonl" \
        "$manifests/test.jsonl" --out_dir "$features" --codec "$codec" \
        --symbols_from "$manifests/train.jsonl" "$manifests/valid.jsonl" "$manifests/test.jsonl" \
        ${features_extra[@]+"${features_extra[@]}"} || die "stage 2: no features could be prepared"
    local list
    for list in "$features/phonemes_bad_items.tsv" "$features/bad_items.tsv"; do
        [ -s "$list" ] && log "items left out: $(wc -l <"$list" | tr -d ' ') in $list"
    done
    return 0
}

# ------------------------------------------------------------------------------------------------ stage 3
stage_train_valle() {
    local symbols
    require_python_module models.tts.valle.trainer "the VALL-E trainer"
    [ -s "$features/symbols.json" ] || die "no symbol table in $features: run stage 2 first"
    symbols="$(tr -d '\n' <"$features/symbols.json")"
    train_model valle "$config" "data.train_manifest=$manifests/train.jsonl" \
        "data.valid_manifest=$manifests/valid.jsonl" "data.features_dir=$features" "data.codec=$codec" \
        "data.symbols=$symbols" ${train_extra[@]+"${train_extra[@]}"}
}

# ------------------------------------------------------------------------------------------------ stage 4
stage_inference_valle() {
    local lists="$exp_dir/infer/lists" out="$exp_dir/infer" device kind
    device="$(infer_device "$ngpu")"
    require_python_module models.tts.valle.inference "the VALL-E inference pipeline"
    [ -d "$exp_dir/valle/checkpoints" ] || die "no trained VALL-E in $exp_dir/valle: run stage 3 first"
    "$python" "$repo_root/egs/tts/hierspeechpp/local/make_eval_lists.py" --manifest_dir "$manifests" \
        --out_dir "$lists/shared" --seed "$seed"
    "$python" "$recipe_dir/local/make_jobs.py" --lists "$lists/shared" --manifest_dir "$manifests" --out_dir "$lists"
    for kind in tts cont; do
        [ -s "$lists/${kind}_jobs.jsonl" ] || continue
        py_module bins.infer --ckpt_dir "$exp_dir/valle" --device "$device" --jobs "$lists/${kind}_jobs.jsonl" \
            --output_dir "$out/$kind" --seed "$seed" --overwrite ${infer_extra[@]+"${infer_extra[@]}"}
    done
}

# ------------------------------------------------------------------------------------------------ stage 5
stage_evaluation_valle() {
    local out="$exp_dir/eval" device results="$exp_dir/eval/results.md"
    require_python_module bins.evaluate "the evaluation CLI (echelon-evaluate)"
    device="$(infer_device "$ngpu")"
    mkdir -p "$out"
    {
        echo "# VALL-E recipe results: dataset $dataset"
        echo
        echo "Experiment: \`$exp_dir\` (seed $seed, codec $codec). Metrics and their definitions: evaluation/README.md."
        if [ "$codec" = tiny-random ]; then
            echo
            echo "**Codes came from a tiny RANDOM EnCodec**: these numbers check the pipeline, not VALL-E."
        fi
    } >"$results.tmp"
    evaluate_kind valle_tts tts \
        "Zero-shot TTS (cross-sentence: prompt = another clip of the speaker + its transcript)" \
        "$out" "$device" "$results.tmp"
    evaluate_kind valle_cont cont \
        "Continuation (first 3 s of the test clip + its whole transcript; reference = the clip)" \
        "$out" "$device" "$results.tmp"
    mv -f "$results.tmp" "$results"
}

print_summary_valle() {
    local kind
    for kind in tts cont; do
        [ -d "$exp_dir/infer/$kind" ] &&
            printf '  %-4s wavs: %s (%s files)\n' "$kind" "$exp_dir/infer/$kind" \
                "$(find "$exp_dir/infer/$kind" -name '*.wav' | wc -l | tr -d ' ')"
    done
    [ -f "$exp_dir/eval/results.md" ] && { echo; cat "$exp_dir/eval/results.md"; }
    return 0
}
