# shellcheck shell=bash
# The template's own stages (egs/TEMPLATE/tts/run.sh): training, inference over the shared job lists, the
# results table and the closing summary. Stages 0-1 (data, manifests) and train_model are the corpus recipes'
# (egs/utils/data_stages.sh). A family hook may call these with extra arguments, e.g.
#     stage_train() { tts_train "data.features_dir=$features"; }

# tts_train [OVERRIDE ...]: train the declared config into EXP_DIR/<model_dir> on the train/valid manifests,
# with the speaker table of the train manifest (unless the family declared speakers=none), the overrides given
# and --train_args (train_model adds those of a hook train_data_overrides: e.g. another data format).
tts_train() {
    local table=() line
    [ -z "$requires_command" ] || require_command "$requires_command" "phonemising the transcripts"
    if [ "$speakers" = table ]; then
        while IFS= read -r line; do table+=("$line"); done < <("$python" "$template_dir/local/speakers.py" \
            --manifest "$manifests/train.jsonl" || echo "FAILED")
        case " ${table[*]} " in *" FAILED "*) die "could not build the speaker table of $manifests/train.jsonl" ;; esac
        log "speaker table: ${table[*]}"
    fi
    train_model "$model_dir" "$config" "data.train_manifest=$manifests/train.jsonl" \
        "data.valid_manifest=$manifests/valid.jsonl" ${table[@]+"${table[@]}"} "$@" ${train_extra[@]+"${train_extra[@]}"}
}

# The shared seeded evaluation lists (EXP_DIR/infer/lists/shared: tts, vc, vc_pairs.tsv, sr_inputs.txt) and,
# from them, the job and evaluation lists of the declared job_style (make_jobs.py: speakers, prompts or
# prompts_text) in EXP_DIR/infer/lists, so every family speaks the same items.
tts_job_lists() {
    local lists="$exp_dir/infer/lists"
    "$python" "$template_dir/local/make_eval_lists.py" --manifest_dir "$manifests" --out_dir "$lists/shared" \
        --seed "$seed" || die "could not make the evaluation lists from $manifests"
    local single=()
    [ "$speakers" = table ] || single=(--single_voice)
    "$python" "$template_dir/local/make_jobs.py" --lists "$lists/shared" --manifest_dir "$manifests" \
        --out_dir "$lists" --style "$job_style" ${single[@]+"${single[@]}"} || die "could not make the job lists"
}

# tts_inference [BINS.INFER OPTION ...]: every declared kind (infer_kinds) that has jobs, through bins/infer.py
# with the trained EXP_DIR/<model_dir> -> EXP_DIR/infer/<kind>/<id>.wav.
tts_inference() {
    local lists="$exp_dir/infer/lists" kind ran=0
    [ -d "$exp_dir/$model_dir/checkpoints" ] ||
        die "no trained $title in $exp_dir/$model_dir: run its training stage first"
    [ -z "$requires_command" ] || require_command "$requires_command" "phonemising the texts"
    tts_job_lists
    for kind in $infer_kinds; do
        [ -s "$lists/${kind}_jobs.jsonl" ] || { log "no $kind jobs (see $lists/skipped.tsv)"; continue; }
        py_module bins.infer --ckpt_dir "$exp_dir/$model_dir" --device "$(infer_device "$ngpu")" \
            --jobs "$lists/${kind}_jobs.jsonl" --output_dir "$exp_dir/infer/$kind" --seed "$seed" "$(rerun_flag)" \
            "$@" ${infer_extra[@]+"${infer_extra[@]}"}
        ran=$((ran + 1))
    done
    [ "$ran" -gt 0 ] || die "no jobs at all in $lists (does the test split have transcripts? see skipped.tsv)"
}

# EXP_DIR/eval/results.md: one section per declared kind (eval_kind headings), through echelon-evaluate.
tts_evaluation() {
    local out="$exp_dir/eval" results="$exp_dir/eval/results.md" kind device found=false
    for kind in $infer_kinds; do [ -z "$(eval_heading "$kind")" ] || [ ! -d "$exp_dir/infer/$kind" ] || found=true; done
    $found || die "no outputs to evaluate in $exp_dir/infer: run stage $(stage_number_of inference) first"
    device="$(infer_device "$ngpu")"
    mkdir -p "$out"
    {
        echo "# $title recipe results: dataset $dataset"
        echo
        echo "Experiment: \`$exp_dir\` (seed $seed). Metrics and their definitions: evaluation/README.md."
        ! declare -F results_notes >/dev/null || results_notes
    } >"$results.tmp"
    for kind in $infer_kinds; do
        [ -z "$(eval_heading "$kind")" ] ||
            evaluate_kind "${family}_$kind" "$kind" "$(eval_heading "$kind")" "$out" "$device" "$results.tmp"
    done
    mv -f "$results.tmp" "$results"
}

print_summary() {
    local kind
    [ -d "$exp_dir/infer" ] || [ -d "$exp_dir/eval" ] || return 0
    echo
    echo "Outputs of $exp_dir:"
    for kind in $infer_kinds; do
        [ ! -d "$exp_dir/infer/$kind" ] || printf '  %-6s wavs: %s (%s files)\n' "$kind" "$exp_dir/infer/$kind" \
            "$(find "$exp_dir/infer/$kind" -name '*.wav' | wc -l | tr -d ' ')"
    done
    [ ! -f "$exp_dir/eval/results.md" ] || { printf '  table:       %s\n\n' "$exp_dir/eval/results.md"; cat "$exp_dir/eval/results.md"; }
    ! declare -F summary_notes >/dev/null || summary_notes
}
