# shellcheck shell=bash
# The stages of egs/tts/hierspeechpp/run.sh (sourced by it; uses its variables). Each stage_* function runs in a
# subshell with errexit on (egs/utils/stage.sh) and only wraps Python CLIs. Stages 0-1 and the training launcher
# are shared with the other corpus recipes (egs/utils/data_stages.sh).

. "$repo_root/egs/utils/data_stages.sh"

# ------------------------------------------------------------------------------------------------ stage 2
# Resolve the SSL model once per experiment (EXP_DIR/ssl/ssl.json) and load it into ssl_path/ssl_layer/ssl_dim.
resolve_ssl() {
    local record="$exp_dir/ssl/ssl.json" recorded
    if [ -f "$record" ]; then
        recorded="$("$python" -c 'import json,sys; r=json.load(open(sys.argv[1])); print("random" if r["random"] else r["model"])' "$record")"
        case "$ssl_model" in auto | "$recorded") ;;
            *) die "$exp_dir was built with SSL model '$recorded', not '$ssl_model': rerun from stage 2 with --force" \
                "(features and models depend on it) or use another --exp_dir" ;;
        esac
    else
        "$python" "$recipe_dir/local/resolve_ssl.py" --ssl_model "$ssl_model" --exp_dir "$exp_dir" >/dev/null ||
            die "could not set up the SSL model '$ssl_model'"
    fi
    IFS=$'\t' read -r ssl_path ssl_layer ssl_dim ssl_random ssl_why < <("$python" -c '
import json, sys
r = json.load(open(sys.argv[1]))
print("\t".join([r["model"], str(r["layer"]), str(r["dim"]), str(r["random"]).lower(), r.get("why", "")]))' "$record")
    if [ "$ssl_random" = true ] && [ "${1:-}" = announce ]; then
        announce_random_ssl
    elif [ "$ssl_random" = true ]; then
        log "SSL model: RANDOMLY INITIALISED wav2vec 2.0 ($ssl_path), not facebook/mms-300m"
    else
        log "SSL model: $ssl_path, layer $ssl_layer, $ssl_dim-dim ($ssl_why)"
    fi
}

announce_random_ssl() {
    announce "SSL features come from a small RANDOMLY INITIALISED wav2vec 2.0 ($ssl_path), NOT from" \
        "facebook/mms-300m ($ssl_why). The pipeline runs end to end, but models trained on these features" \
        "cannot produce intelligible speech; pass --ssl_model facebook/mms-300m (or a local copy) for real results."
}

stage_features() {
    local device
    require_python_module bins.extract_features "the feature-extraction CLI"
    resolve_ssl announce
    device="$(infer_device "$ngpu")"
    # One call for all splits: the SSL model loads once; finished items are skipped on a rerun.
    py_module bins.extract_features --manifest "$manifests/train.jsonl" --manifest "$manifests/valid.jsonl" \
        --manifest "$manifests/test.jsonl" --out_dir "$features" --ssl_model "$ssl_path" --ssl_layer "$ssl_layer" \
        --nj "$nj" --device "$device" --allow_failures ${extract_extra[@]+"${extract_extra[@]}"}
    [ ! -s "$features/bad_items.tsv" ] || log "some items could not be featurised (they are skipped): $features/bad_items.tsv"
}

# ------------------------------------------------------------------------------------------------ stages 3-5
stage_train_synth() {
    require_python_module models.tts.hierspeechpp.trainer "the HierSpeech++ synthesizer trainer"
    resolve_ssl
    train_model synth "$config" "data.train_manifest=$manifests/train.jsonl" \
        "data.valid_manifest=$manifests/valid.jsonl" "data.features_dir=$features" "data.ssl.model=$ssl_path" \
        "data.ssl.layer=$ssl_layer" "model.ssl_channels=$ssl_dim" ${synth_extra[@]+"${synth_extra[@]}"}
}

has_transcripts() { # true when the train manifest has at least one non-empty text
    "$python" -c '
import json, sys
sys.exit(0 if any((json.loads(l).get("text") or "").strip() for l in open(sys.argv[1]) if l.strip()) else 1)' "$1"
}

stage_train_ttv() {
    if ! has_transcripts "$manifests/train.jsonl"; then
        mkdir -p "$exp_dir/ttv"
        echo "no transcripts in $manifests/train.jsonl" >"$exp_dir/ttv/SKIPPED"
        announce "TTV is NOT trained: the $dataset corpus has no transcripts, so stage 6 runs voice conversion only"
        return 0
    fi
    rm -f "$exp_dir/ttv/SKIPPED"
    require_python_module models.ttv.hierspeechpp_ttv.trainer "the Text-to-Vec trainer"
    require_command espeak-ng "phonemising the transcripts (phonemizer backend)"
    resolve_ssl
    # TTV reads precomputed SSL/F0 features only (stage 2), so it needs the SSL width but not the model.
    train_model ttv "$ttv_config" "data.train_manifest=$manifests/train.jsonl" \
        "data.valid_manifest=$manifests/valid.jsonl" "data.features_dir=$features" "model.ssl_channels=$ssl_dim" \
        ${ttv_extra[@]+"${ttv_extra[@]}"}
}

released_sr48k() {
    printf '%s' "$repo_root/models/sr/speechsr/pretrained/speechsr48k_G_100000.pth"
}

stage_speechsr() {
    [ -f "$(released_sr48k)" ] || die "released SpeechSR weights missing: $(released_sr48k)"
    log "released SpeechSR 16->48 kHz weights: $(released_sr48k)"
    if [ "$sr_train" = true ]; then
        require_python_module models.sr.speechsr.trainer "the SpeechSR trainer"
        train_model speechsr "$sr_config" "data.train_manifest=$manifests/train.jsonl" \
            "data.valid_manifest=$manifests/valid.jsonl" ${sr_extra[@]+"${sr_extra[@]}"}
    fi
}

# ------------------------------------------------------------------------------------------------ stage 6
sr_checkpoint() { # the SpeechSR used for 48 kHz output
    if [ "$sr_weights" = trained ]; then
        [ -d "$exp_dir/speechsr/checkpoints" ] || die "--sr_weights trained, but no SpeechSR was trained in $exp_dir/speechsr"
        printf '%s' "$exp_dir/speechsr"
    else
        released_sr48k
    fi
}

# stage_tts JOBS OUT DEVICE: the TTS pipeline over the job list -> OUT/tts/<id>.wav (16 kHz, evaluated) and
# OUT/tts48k/<id>_48k.wav (SpeechSR). The TTS command line takes one prompt per call, so it runs once per job.
stage_tts() {
    local jobs="$1" out="$2" device="$3" work="$2/tts_work" id prompt
    require_python_module models.ttv.hierspeechpp_ttv.inference "the HierSpeech++ TTS pipeline (TTV inference)"
    require_command espeak-ng "phonemising the TTS texts"
    [ -d "$exp_dir/ttv/checkpoints" ] || die "no trained TTV in $exp_dir/ttv: run stage 4 first"
    rm -rf "$out/tts" "$out/tts48k" "$work"
    mkdir -p "$out/tts" "$work"
    # One text file per job (a text starting with '-' must not look like an option).
    "$python" - "$jobs" "$work" >"$work/jobs.tsv" <<'PY'
import json, sys
from pathlib import Path

for line in open(sys.argv[1], encoding="utf-8"):
    if line.strip():
        job = json.loads(line)
        (Path(sys.argv[2]) / f"{job['id']}.txt").write_text(job["text"] + "\n", encoding="utf-8")
        print(f"{job['id']}\t{job['prompt']}")
PY
    while IFS=$'\t' read -r id prompt; do
        py_module bins.infer --ckpt_dir "$exp_dir/ttv" --synthesizer "$exp_dir/synth" --prompt "$prompt" \
            --text_file "$work/$id.txt" --output_dir "$work/$id" --seed "$seed" --device "$device" \
            ${tts_extra[@]+"${tts_extra[@]}"} </dev/null
        [ -f "$work/$id/tts_0000.wav" ] || die "TTS wrote nothing for $id (see the bad-item list in $work/$id)"
        mv -f "$work/$id/tts_0000.wav" "$out/tts/$id.wav"
    done <"$work/jobs.tsv"
    rm -rf "$work"
    sr_upsample "$out/tts48k" "$device" "$out/tts"/*.wav
}

# sr_upsample OUT_DIR DEVICE WAV...: 16 kHz -> 48 kHz with the released SpeechSR (or the trained one).
sr_upsample() {
    local dest="$1" device="$2"
    shift 2
    if [ "$sr_weights" = trained ]; then
        py_module bins.infer --ckpt_dir "$(sr_checkpoint)" --device "$device" --inputs "$@" --output_dir "$dest" \
            --target_rate 48000
    else
        py_module bins.infer --model_type speechsr --device "$device" --inputs "$@" --output_dir "$dest" \
            --target_rate 48000
    fi
}

stage_inference() {
    local lists="$exp_dir/infer/lists" out="$exp_dir/infer" device sr_source
    require_python_module models.tts.hierspeechpp.inference "HierSpeech++ voice conversion (inference pipeline)"
    require_python_module models.sr.speechsr.inference "SpeechSR inference"
    [ -d "$exp_dir/synth/checkpoints" ] || die "no trained synthesizer in $exp_dir/synth: run stage 3 first"
    device="$(infer_device "$ngpu")"
    "$python" "$recipe_dir/local/make_eval_lists.py" --manifest_dir "$manifests" --out_dir "$lists" --seed "$seed"

    # Voice conversion: each test utterance into another (real) speaker's voice; 16 kHz, named <src>_to_<prompt>.
    rm -rf "$out/vc"
    py_module bins.infer --ckpt_dir "$exp_dir/synth" --device "$device" --pairs "$lists/vc_pairs.tsv" \
        --output_dir "$out/vc" --seed "$seed" ${vc_extra[@]+"${vc_extra[@]}"}

    # Text-to-speech: text + another clip of the same speaker as the prompt -> TTV -> synthesizer (-> SpeechSR).
    if [ -f "$exp_dir/ttv/SKIPPED" ]; then
        log "no TTS: $(cat "$exp_dir/ttv/SKIPPED")"
    elif [ ! -s "$lists/tts.jsonl" ]; then
        log "no TTS: no test utterance has both a transcript and another clip of its speaker ($lists/skipped.tsv)"
    else
        stage_tts "$lists/tts.jsonl" "$out" "$device"
    fi

    # 48 kHz: a real test clip through SpeechSR (the released weights unless --sr_weights trained).
    rm -rf "$out/sr48k"
    if [ -s "$lists/sr_inputs.txt" ]; then
        sr_source="$(head -n 1 "$lists/sr_inputs.txt")"
        sr_upsample "$out/sr48k" "$device" "$sr_source"
        log "48 kHz SpeechSR output of the real clip $sr_source: $(ls "$out/sr48k"/*.wav)"
    else
        log "no real 16 kHz+ clip in the test split to upsample"
    fi
}

# ------------------------------------------------------------------------------------------------ stage 7
stage_evaluation() {
    local out="$exp_dir/eval" device results
    require_python_module bins.evaluate "the evaluation CLI (echelon-evaluate)"
    device="$(infer_device "$ngpu")"
    results="$out/results.md"
    mkdir -p "$out"
    {
        echo "# HierSpeech++ recipe results: dataset $dataset"
        echo
        echo "Experiment: \`$exp_dir\` (seed $seed). Metrics and their definitions: evaluation/README.md."
        if [ "$(ssl_is_random)" = true ]; then
            echo
            echo "**SSL features came from a randomly initialised wav2vec 2.0, not MMS**: these numbers check the"
            echo "pipeline, not the model (see EXP_DIR/ssl/ssl.json)."
        fi
    } >"$results.tmp"
    evaluate_kind hierspeechpp_tts tts \
        "TTS (test-split text, prompt = another clip of the same speaker; reference = the real recording)" \
        "$out" "$device" "$results.tmp"
    evaluate_kind hierspeechpp_vc vc \
        "Voice conversion (source = test utterance, prompt = another real speaker; reference = the source)" \
        "$out" "$device" "$results.tmp"
    mv -f "$results.tmp" "$results"
}

ssl_is_random() {
    "$python" -c 'import json,sys; print(str(json.load(open(sys.argv[1]))["random"]).lower())' "$exp_dir/ssl/ssl.json" \
        2>/dev/null || echo unknown
}

# ------------------------------------------------------------------------------------------------ summary
print_summary() {
    local dir count
    [ -d "$exp_dir/infer" ] || [ -d "$exp_dir/eval" ] || return 0
    echo
    echo "Outputs of $exp_dir:"
    for dir in tts vc sr48k; do
        if [ -d "$exp_dir/infer/$dir" ]; then
            count="$(find "$exp_dir/infer/$dir" -name '*.wav' | wc -l | tr -d ' ')"
            printf '  %-6s wavs:    %s (%s files)\n' "$dir" "$exp_dir/infer/$dir" "$count"
        fi
    done
    for dir in tts vc; do
        if [ -d "$exp_dir/eval/$dir" ]; then
            printf '  %-6s metrics: %s (per utterance: per_utterance.csv, summary.json)\n' "$dir" "$exp_dir/eval/$dir"
            [ ! -d "$exp_dir/eval/$dir/plots" ] || printf '  %-6s plots:   %s\n' "$dir" "$exp_dir/eval/$dir/plots"
        fi
    done
    if [ -f "$exp_dir/eval/results.md" ]; then
        printf '  table:        %s\n\n' "$exp_dir/eval/results.md"
        cat "$exp_dir/eval/results.md"
    fi
    if [ "$(ssl_is_random)" = true ]; then
        announce "this experiment's SSL features came from a RANDOMLY INITIALISED wav2vec 2.0 ($exp_dir/ssl/ssl.json):" \
            "its audio and metrics show the pipeline working, not HierSpeech++ quality; use --ssl_model facebook/mms-300m."
    fi
    return 0
}
