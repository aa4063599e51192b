# shellcheck shell=bash
# The stages of egs/tts/hierspeechpp/run.sh (sourced by it; uses its variables). Each stage_* function runs in a
# subshell with errexit on (egs/utils/stage.sh) and only wraps Python CLIs.

. "$repo_root/egs/utils/download.sh"

# Public download locations (used only when --download true and the URL answers).
LJSPEECH_URL="https://data.keithito.com/data/speech/LJSpeech-1.1.tar.bz2"
VCTK_URL="https://datashare.ed.ac.uk/bitstream/handle/10283/3443/VCTK-Corpus-0.92.zip"
LIBRITTS_URL_BASE="https://www.openslr.org/resources/60"
LIBRITTS_SUBSETS="train-clean-100 dev-clean test-clean"

# Bash 3.2-safe expansion of a possibly empty array: "${arr[@]}" under set -u fails there.
# Usage: ${config_overrides[@]+"${config_overrides[@]}"} (written out at each call site).

# ------------------------------------------------------------------------------------------------ stage 0
# Where the corpus root of a public dataset lies under data_dir, or nothing when it is absent.
corpus_root() {
    local candidate
    case "$dataset" in
        ljspeech)
            for candidate in "$data_dir" "$data_dir/LJSpeech-1.1"; do
                [ -f "$candidate/metadata.csv" ] && { printf '%s' "$candidate"; return 0; }
            done ;;
        vctk)
            for candidate in "$data_dir" "$data_dir/VCTK-Corpus-0.92" "$data_dir/VCTK-Corpus"; do
                [ -d "$candidate/txt" ] && { [ -d "$candidate/wav48_silence_trimmed" ] || [ -d "$candidate/wav48" ]; } &&
                    { printf '%s' "$candidate"; return 0; }
            done ;;
        libritts)
            for candidate in "$data_dir" "$data_dir/LibriTTS"; do
                [ -d "$candidate/train-clean-100" ] && { printf '%s' "$candidate"; return 0; }
            done ;;
    esac
    return 0
}

expected_layout() {
    case "$dataset" in
        ljspeech) echo "$data_dir/LJSpeech-1.1/metadata.csv (or $data_dir/metadata.csv)" ;;
        vctk) echo "$data_dir/VCTK-Corpus-0.92/{txt,wav48_silence_trimmed} (or directly under $data_dir)" ;;
        libritts) echo "$data_dir/LibriTTS/{train-clean-100,dev-clean,test-clean} (or directly under $data_dir)" ;;
    esac
}

stage_data() {
    local root url count synth_dir rc
    mkdir -p "$exp_dir/data"
    case "$dataset" in
        mini)
            [ -f "$data_dir/manifest.csv" ] ||
                die "mini corpus not found: $data_dir/manifest.csv does not exist (--data_dir should be egs/mini/corpus)"
            synth_dir="$exp_dir/data/synthetic"
            if [ "$synthetic_speakers" -gt 0 ]; then
                set +e
                "$python" "$repo_root/egs/mini/local/make_synthetic_speakers.py" --out_dir "$synth_dir" \
                    --num_speakers "$synthetic_speakers" --num_sentences 4
                rc=$?
                set -e
                case "$rc" in
                    0) announce "the mini corpus is topped up with $synthetic_speakers SYNTHETIC (espeak-ng/flite) speakers," \
                        "labelled 'synthetic' in $synth_dir/manifest.csv; --synthetic_speakers 0 turns this off" ;;
                    3) log "no espeak-ng or flite installed: only the real mini corpus is used" ;;
                    *) die "could not make the synthetic speakers (exit $rc); --synthetic_speakers 0 skips them" ;;
                esac
            else
                rm -rf "$synth_dir"
            fi
            log "mini corpus for stage 1: $(mini_merged_corpus)" ;;
        ljspeech | vctk | libritts)
            root="$(corpus_root)"
            if [ -z "$root" ]; then
                [ "$download" = true ] || die "$dataset not found: expected $(expected_layout); --download is false"
                case "$dataset" in
                    ljspeech) url="$LJSPEECH_URL" ;;
                    vctk) url="$VCTK_URL" ;;
                    libritts) url="$LIBRITTS_URL_BASE/train-clean-100.tar.gz" ;;
                esac
                url_reachable "$url" ||
                    die "$dataset not found: expected $(expected_layout), and $url is not reachable (no network?):" \
                        "download it elsewhere and pass --data_dir"
                if [ "$dataset" = libritts ]; then
                    for url in $LIBRITTS_SUBSETS; do fetch_and_extract "$LIBRITTS_URL_BASE/$url.tar.gz" "$data_dir"; done
                else
                    fetch_and_extract "$url" "$data_dir"
                fi
                root="$(corpus_root)"
                [ -n "$root" ] || die "downloaded $dataset but found no $(expected_layout)"
            fi
            log "$dataset corpus: $root" ;;
        custom)
            [ -d "$data_dir" ] || die "custom corpus not found: $data_dir is not a directory"
            count="$(find "$data_dir" -type f \( -iname '*.wav' -o -iname '*.flac' -o -iname '*.mp3' -o -iname '*.ogg' \) |
                wc -l | tr -d ' ')"
            [ "$count" -gt 0 ] || die "custom corpus $data_dir has no audio files (.wav/.flac/.mp3/.ogg)"
            log "custom corpus: $count audio files under $data_dir" ;;
    esac
}

# The corpus directory stage 1 reads: for mini, a merged view of the bundled corpus and the synthetic speakers.
mini_merged_corpus() {
    local merged="$exp_dir/data/mini_corpus" synth="$exp_dir/data/synthetic" entry
    rm -rf "$merged"
    mkdir -p "$merged"
    for entry in "$data_dir"/*/; do ln -s "${entry%/}" "$merged/$(basename "$entry")"; done
    cp "$data_dir/manifest.csv" "$merged/manifest.csv"
    [ -z "$(tail -c 1 "$merged/manifest.csv")" ] || echo >>"$merged/manifest.csv"
    [ -f "$data_dir/LICENSE.md" ] && ln -s "$data_dir/LICENSE.md" "$merged/LICENSE.md"
    if [ -f "$synth/manifest.csv" ]; then
        for entry in "$synth"/*/; do ln -s "${entry%/}" "$merged/$(basename "$entry")"; done
        tail -n +2 "$synth/manifest.csv" >>"$merged/manifest.csv"
    fi
    printf '%s' "$merged"
}

# ------------------------------------------------------------------------------------------------ stage 1
# The directory the preparer reads.
prepare_source() {
    if [ "$dataset" = mini ]; then
        [ -f "$exp_dir/data/mini_corpus/manifest.csv" ] || die "run stage 0 first: $exp_dir/data/mini_corpus is missing"
        printf '%s' "$exp_dir/data/mini_corpus"
    else
        printf '%s' "$data_dir"
    fi
}

stage_manifests() {
    require_python_module bins.preprocess "the data preparation CLI (echelon-preprocess)"
    py_module bins.preprocess --dataset "$dataset" --data_dir "$(prepare_source)" --out_dir "$manifests" \
        --seed "$seed" ${prepare_extra[@]+"${prepare_extra[@]}"}
    for split in train valid test; do
        [ -s "$manifests/$split.jsonl" ] || die "stage 1 wrote no $manifests/$split.jsonl"
    done
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
    if [ "$ssl_random" = true ]; then
        announce "SSL features come from a small RANDOMLY INITIALISED wav2vec 2.0 ($ssl_path), NOT from" \
            "facebook/mms-300m ($ssl_why). The pipeline runs end to end, but models trained on these features" \
            "cannot produce intelligible speech; pass --ssl_model facebook/mms-300m (or a local copy) for real results."
    else
        log "SSL model: $ssl_path, layer $ssl_layer, $ssl_dim-dim ($ssl_why)"
    fi
}

stage_features() {
    require_python_module bins.extract_features "the feature-extraction CLI"
    resolve_ssl
    for split in train valid test; do
        py_module bins.extract_features --manifest "$manifests/$split.jsonl" --out_dir "$features" \
            --ssl_model "$ssl_path" --ssl_layer "$ssl_layer" --nj "$nj" ${extract_extra[@]+"${extract_extra[@]}"}
    done
}

# ------------------------------------------------------------------------------------------------ stages 3-5
# Train with bins/train.py; resumes when EXP_DIR/<name>/checkpoints exists (an interrupted or --force rerun).
train_model() {
    local name="$1" cfg="$2"
    shift 2
    local resume=()
    [ -f "$cfg" ] || die "config not found: $cfg"
    [ -d "$exp_dir/$name/checkpoints" ] && resume=(--resume) && log "$name: resuming from $exp_dir/$name/checkpoints"
    py_train "$ngpu" --config "$cfg" --exp_dir "$exp_dir/$name" ${resume[@]+"${resume[@]}"} "train.seed=$seed" "$@" \
        ${config_overrides[@]+"${config_overrides[@]}"}
}

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
    resolve_ssl
    train_model ttv "$ttv_config" "data.train_manifest=$manifests/train.jsonl" \
        "data.valid_manifest=$manifests/valid.jsonl" "data.features_dir=$features" "data.ssl.model=$ssl_path" \
        "data.ssl.layer=$ssl_layer" "model.ssl_channels=$ssl_dim" ${ttv_extra[@]+"${ttv_extra[@]}"}
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

stage_inference() {
    local lists="$exp_dir/infer/lists" out="$exp_dir/infer" device
    device="$(infer_device "$ngpu")"
    require_python_module models.tts.hierspeechpp.inference "HierSpeech++ voice conversion (inference pipeline)"
    resolve_ssl
    [ -d "$exp_dir/synth/checkpoints" ] || die "no trained synthesizer in $exp_dir/synth: run stage 3 first"
    "$python" "$recipe_dir/local/make_eval_lists.py" --manifest_dir "$manifests" --out_dir "$lists" --seed "$seed"
    py_module bins.infer --ckpt_dir "$exp_dir/synth" --device "$device" --jobs "$lists/vc.jsonl" \
        --output_dir "$out/vc" ${infer_extra[@]+"${infer_extra[@]}"}
    if [ -f "$exp_dir/ttv/SKIPPED" ]; then
        log "no TTS: $(cat "$exp_dir/ttv/SKIPPED")"
    else
        require_python_module models.ttv.hierspeechpp_ttv.inference "the HierSpeech++ TTS pipeline"
        require_command espeak-ng "phonemising the TTS texts"
        py_module bins.infer --ckpt_dir "$exp_dir/ttv" --synth_ckpt "$exp_dir/synth" --sr_ckpt "$(sr_checkpoint)" \
            --device "$device" --jobs "$lists/tts.jsonl" --output_dir "$out/tts" --seed "$seed" \
            ${infer_extra[@]+"${infer_extra[@]}"}
    fi
    require_python_module models.sr.speechsr.inference "SpeechSR inference"
    py_module bins.infer --model_type speechsr --ckpt "$(released_sr48k)" --device "$device" \
        --jobs "$lists/sr.jsonl" --output_dir "$out/sr48k"
}

# ------------------------------------------------------------------------------------------------ stage 7
stage_evaluation() {
    local out="$exp_dir/eval" kind
    require_python_module bins.evaluate "the evaluation CLI (echelon-evaluate)"
    for kind in tts vc; do
        [ -s "$exp_dir/infer/lists/$kind.jsonl" ] && [ -d "$exp_dir/infer/$kind" ] || continue
        py_module bins.evaluate --generated_dir "$exp_dir/infer/$kind" --jobs "$exp_dir/infer/lists/$kind.jsonl" \
            --output_dir "$out/$kind" --system "hierspeechpp_$kind" ${eval_extra[@]+"${eval_extra[@]}"}
    done
}

# ------------------------------------------------------------------------------------------------ summary
print_summary() {
    local dir found=false
    for dir in "$exp_dir/infer/tts" "$exp_dir/infer/vc" "$exp_dir/infer/sr48k" "$exp_dir/eval"; do
        [ -d "$dir" ] && found=true
    done
    $found || return 0
    echo
    echo "Results of $exp_dir:"
    for dir in tts vc sr48k; do
        [ -d "$exp_dir/infer/$dir" ] &&
            printf '  %-8s wavs: %s (%s files)\n' "$dir" "$exp_dir/infer/$dir" "$(find "$exp_dir/infer/$dir" -name '*.wav' | wc -l | tr -d ' ')"
    done
    for dir in tts vc; do
        [ -d "$exp_dir/eval/$dir" ] || continue
        printf '  %-8s metrics: %s\n' "$dir" "$(find "$exp_dir/eval/$dir" -maxdepth 1 -name '*.md' | head -1)"
        [ -d "$exp_dir/eval/$dir/plots" ] && printf '  %-8s plots: %s\n' "$dir" "$exp_dir/eval/$dir/plots"
    done
    if [ -f "$exp_dir/eval/results.md" ]; then
        echo
        cat "$exp_dir/eval/results.md"
    fi
}
