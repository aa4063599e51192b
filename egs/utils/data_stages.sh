# shellcheck shell=bash
# Data stages shared by the corpus recipes (egs/TEMPLATE/tts, so every egs/tts/*, egs/vocoder/*, egs/benchmark):
# stage 0 (corpus check, download, mini + synthetic speakers), stage 1 (registered preparer -> seeded JSONL
# manifests) and the training launcher.
# Source after egs/utils/{env,stage,parse_options,corpus_setup}.sh; uses the recipe's variables dataset,
# data_dir, exp_dir, manifests, seed, download, synthetic_speakers, ngpu, prepare_extra and config_overrides.
# A recipe's own stage_data / stage_manifests, defined before this file is sourced, are kept: the defaults below
# are defined only where the recipe has none. A recipe's hook may call the shared shared_stage_data /
# shared_stage_manifests and add its own work.

# Bash 3.2-safe expansion of a possibly empty array ("${arr[@]}" fails there under set -u):
#     ${arr[@]+"${arr[@]}"}

# ------------------------------------------------------------------------------------------------ stage 0
# Where the corpus root of a public dataset lies under data_dir, or nothing when it is absent.
corpus_root() {
    local candidate sub
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
                # any subset folder (train-*, dev-*, test-*), as the libritts preparer accepts
                for sub in "$candidate"/train-* "$candidate"/dev-* "$candidate"/test-*; do
                    [ -d "$sub" ] && { printf '%s' "$candidate"; return 0; }
                done
            done ;;
    esac
    return 0
}

expected_layout() {
    case "$dataset" in
        ljspeech) echo "$data_dir/LJSpeech-1.1/metadata.csv (or $data_dir/metadata.csv)" ;;
        vctk) echo "$data_dir/VCTK-Corpus-0.92/{txt,wav48_silence_trimmed} (or directly under $data_dir)" ;;
        libritts) echo "$data_dir/LibriTTS/<subset> folders such as train-clean-100 (or directly under $data_dir)" ;;
    esac
}

shared_stage_data() {
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
            fi ;;
        ljspeech | vctk | libritts)
            root="$(corpus_root)"
            if [ -z "$root" ]; then
                [ "$download" = true ] || die "$dataset not found: expected $(expected_layout); --download is false"
                log "$dataset not found under $data_dir: downloading it (public URLs of processors/data/download.py)"
                "$python" - "$dataset" "$data_dir" <<'PY' ||
import sys
from pathlib import Path

from processors.data.download import CORPUS_URLS, DownloadError, fetch_and_extract

try:
    for url in CORPUS_URLS[sys.argv[1]]:
        fetch_and_extract(url, Path(sys.argv[2]))
except DownloadError as err:
    sys.exit(str(err))
PY
                    die "$dataset not found: expected $(expected_layout), and the download failed (no network?):" \
                        "download it elsewhere and pass --data_dir"
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

# ------------------------------------------------------------------------------------------------ stage 1
preparer_name() {
    case "$dataset" in custom) echo folder ;; *) echo "$dataset" ;; esac
}

# run_preparer NAME DATA_DIR OUT_DIR [key=value ...]: the registered preparer (processors/data/preparers.py)
# writes OUT_DIR/{train,valid,test}.jsonl with a split seeded by --seed; key=value are its keyword arguments.
run_preparer() {
    local name=$1 data=$2 out=$3
    shift 3
    "$python" -m bins.preprocess --dataset "$name" --data_dir "$data" --out_dir "$out" --seed "$seed" "$@" \
        || die "stage 1: preparer $name failed (see the message above)"
}

shared_stage_manifests() {
    local split
    require_python_module processors.data.preparers "the dataset preparers"
    run_preparer "$(preparer_name)" "$data_dir" "$manifests" ${prepare_extra[@]+"${prepare_extra[@]}"}
    if [ "$dataset" = mini ] && [ -f "$exp_dir/data/synthetic/manifest.csv" ]; then
        # Synthetic speakers only ever train: valid/test, and so every metric, stay real speech.
        run_preparer mini "$exp_dir/data/synthetic" "$manifests/synthetic" valid=0 test=0
        cat "$manifests/synthetic/train.jsonl" >>"$manifests/train.jsonl"
        log "added $(wc -l <"$manifests/synthetic/train.jsonl" | tr -d ' ') SYNTHETIC clips to the train split only"
    fi
    for split in train valid test; do
        [ -s "$manifests/$split.jsonl" ] || die "stage 1 wrote no $manifests/$split.jsonl"
    done
    log "manifests: $(for split in train valid test; do printf '%s %s  ' "$split" "$(wc -l <"$manifests/$split.jsonl" | tr -d ' ')"; done)"
}

# The stages 0 and 1 a recipe runs: its own when it defined them, else the shared ones above.
declare -F stage_data >/dev/null || stage_data() { shared_stage_data; }
declare -F stage_manifests >/dev/null || stage_manifests() { shared_stage_manifests; }

# ------------------------------------------------------------------------------------------------ training
# Train with bins/train.py; resumes when EXP_DIR/<name>/checkpoints exists (an interrupted or --force rerun).
# A recipe hook before_training NAME CONFIG (optional) runs first (e.g. writes the shards the run streams), and
# a hook train_data_overrides NAME (optional) prints more overrides, one per line, for that training run:
# the place for how the data is read (e.g. another data format's data.* keys), common to every training stage.
train_model() {
    local name="$1" cfg="$2"
    shift 2
    local resume=() data=() line
    [ -f "$cfg" ] || die "config not found: $cfg"
    if declare -F before_training >/dev/null; then before_training "$name" "$cfg"; fi
    [ -d "$exp_dir/$name/checkpoints" ] && resume=(--resume) && log "$name: resuming from $exp_dir/$name/checkpoints"
    if declare -F train_data_overrides >/dev/null; then
        while IFS= read -r line; do [ -z "$line" ] || data+=("$line"); done < <(train_data_overrides "$name")
    fi
    py_train "$ngpu" --config "$cfg" --exp_dir "$exp_dir/$name" ${resume[@]+"${resume[@]}"} "train.seed=$seed" \
        ${data[@]+"${data[@]}"} "$@" ${config_overrides[@]+"${config_overrides[@]}"}
}

