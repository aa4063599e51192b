# shellcheck shell=bash
# HierSpeech++'s own stages and checks on the TTS template (sourced by egs/tts/hierspeechpp/run.sh, which
# declares its options): SSL features, synthesizer, TTV, SpeechSR, and an inference stage of TTS (TTV +
# synthesizer + SpeechSR, one prompt per call), VC and 48 kHz upsampling. Data, manifests, the training launcher,
# the job lists and the results table are the template's.

# Option checks after the shared ones (EXP_DIR is not bound yet when they fail) and the configuration set:
# full-size models need a GPU, so a CPU-only run trains the tiny ones unless told otherwise.
check_options() {
    local tiny=""
    case "$nj" in *[!0-9]* | "" | 0) die "--nj takes a positive integer (got '$nj')" ;; esac
    case "$sr_train" in auto) [ "$dataset" = mini ] && sr_train=true || sr_train=false ;; true | false) ;;
        *) die "--sr_train takes auto, true or false (got '$sr_train')" ;;
    esac
    case "$sr_weights" in released | trained) ;; *) die "--sr_weights takes released or trained (got '$sr_weights')" ;; esac
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
    [ "$conf_set" = tiny ] && tiny="_tiny"
    config="${config:-$recipe_dir/conf/synth$tiny.json5}"
    ttv_config="${ttv_config:-$recipe_dir/conf/ttv$tiny.json5}"
    sr_config="${sr_config:-$recipe_dir/conf/speechsr$tiny.json5}"
}

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
stage_synth() {
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

stage_ttv() {
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
    # TTS needs both checkpoints: a pipeline spec beside them (paths relative to it) names the system, for
    # echelon-infer --pipeline and the benchmark's discovery of trained experiments.
    printf '{pipeline: "hierspeechpp_tts", components: {ttv: "ttv", synthesizer: "synth"}}\n' \
        >"$exp_dir/hierspeechpp_tts.pipeline.json5"
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

# sr_upsample OUT_DIR DEVICE WAV...: 16 kHz -> 48 kHz with the released SpeechSR (or the trained one).
sr_upsample() {
    local dest="$1" device="$2"
    shift 2
    if [ "$sr_weights" = trained ]; then
        py_module bins.infer --ckpt_dir "$(sr_checkpoint)" --device "$device" --inputs "$@" --output_dir "$dest" \
            --target_rate 48000 "$(rerun_flag)"
    else
        py_module bins.infer --model_type speechsr --device "$device" --inputs "$@" --output_dir "$dest" \
            --target_rate 48000 "$(rerun_flag)"
    fi
}

# TTS (TTV + synthesizer, prompt = another clip of the speaker) of the template's job lists (job_style prompts),
# VC of its pairs, 48 kHz SpeechSR of the TTS outputs and of one real clip.
stage_inference() {
    local lists="$exp_dir/infer/lists" out="$exp_dir/infer" device sr_source
    [ -d "$exp_dir/synth/checkpoints" ] || die "no trained synthesizer in $exp_dir/synth: run stage 3 first"
    device="$(infer_device "$ngpu")"
    tts_job_lists
    # Voice conversion: each test utterance into another (real) speaker's voice; 16 kHz, named <src>_to_<prompt>.
    py_module bins.infer --ckpt_dir "$exp_dir/synth" --device "$device" --pairs "$lists/vc_pairs.tsv" \
        --output_dir "$out/vc" --seed "$seed" "$(rerun_flag)" ${vc_extra[@]+"${vc_extra[@]}"}
    if [ -f "$exp_dir/ttv/SKIPPED" ]; then
        log "no TTS: $(cat "$exp_dir/ttv/SKIPPED")"
    elif [ ! -s "$lists/tts_jobs.jsonl" ]; then
        log "no TTS: no test utterance has both a transcript and another clip of its speaker ($lists/shared/skipped.tsv)"
    else
        [ -d "$exp_dir/ttv/checkpoints" ] || die "no trained TTV in $exp_dir/ttv: run stage 4 first"
        require_command espeak-ng "phonemising the TTS texts"
        py_module bins.infer --ckpt_dir "$exp_dir/ttv" --component "synthesizer=$exp_dir/synth" --device "$device" \
            --jobs "$lists/tts_jobs.jsonl" --output_dir "$out/tts" --seed "$seed" "$(rerun_flag)" \
            ${tts_extra[@]+"${tts_extra[@]}"}
        sr_upsample "$out/tts48k" "$device" "$out/tts"/*.wav
    fi
    # 48 kHz: a real test clip through SpeechSR (the released weights unless --sr_weights trained).
    if [ -s "$lists/shared/sr_inputs.txt" ]; then
        sr_source="$(head -n 1 "$lists/shared/sr_inputs.txt")"
        sr_upsample "$out/sr48k" "$device" "$sr_source"
        log "48 kHz SpeechSR output of the real clip $sr_source: $(ls "$out/sr48k"/*.wav)"
    else
        log "no real 16 kHz+ clip in the test split to upsample"
    fi
}

# ------------------------------------------------------------------------------------------------ results
results_notes() {
    [ "$(ssl_is_random)" = true ] || return 0
    echo
    echo "**SSL features came from a randomly initialised wav2vec 2.0, not MMS**: these numbers check the"
    echo "pipeline, not the model (see EXP_DIR/ssl/ssl.json)."
}

ssl_is_random() {
    "$python" -c 'import json,sys; print(str(json.load(open(sys.argv[1]))["random"]).lower())' "$exp_dir/ssl/ssl.json" \
        2>/dev/null || echo unknown
}

summary_notes() {
    [ "$(ssl_is_random)" = true ] || return 0
    announce "this experiment's SSL features came from a RANDOMLY INITIALISED wav2vec 2.0 ($exp_dir/ssl/ssl.json):" \
        "its audio and metrics show the pipeline working, not HierSpeech++ quality; use --ssl_model facebook/mms-300m."
}
