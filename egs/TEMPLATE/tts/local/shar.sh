# shellcheck shell=bash
# --data_format shar: every training run of the recipe streams Lhotse Shar shards of the train split instead of
# reading the manifest (data.format=shar, data.shar_dir=EXP_DIR/shar; models/base/shar_stream.py). The shards
# are written before the first training run by bins.extract_features --format shar: the audio at the config's
# data.sample_rate plus the per-item features a family lists in shar_features (converted from EXP_DIR/features,
# its features stage's output). Writing is resumable per shard, so a rerun only finishes what is missing.
# A family whose other training runs cannot stream yet names those that can in shar_runs (default: all).
[ "$data_format" = files ] || [ "$data_format" = shar ] || die "--data_format $data_format: expected files or shar"

write_train_shards() {  # write_train_shards CONFIG
    local rate names=() features_args=(--features none)
    rate="$(cd "$repo_root" && "$python" -c 'import sys; from utils.config import load_config
print(load_config(sys.argv[1], []).get("data", {}).get("sample_rate", 16000))' "$1")" || die "cannot read $1"
    read -r -a names <<<"${shar_features:-}"
    [ ${#names[@]} -eq 0 ] || features_args=(--features "${names[@]}" --from_features "$features")
    log "writing Lhotse Shar shards of $manifests/train.jsonl (audio at $rate Hz${shar_features:+, $shar_features}) -> $exp_dir/shar"
    py_module bins.extract_features --manifest "$manifests/train.jsonl" --out_dir "$exp_dir/shar" --format shar \
        --audio_rate "$rate" "${features_args[@]}" || die "could not write the shards into $exp_dir/shar"
}

if [ "$data_format" = shar ]; then
    declare -F train_data_overrides >/dev/null && die "--data_format shar: this recipe already sets train_data_overrides"
    streams() { [ -z "${shar_runs:-}" ] || [[ " $shar_runs " == *" $1 "* ]]; }  # streams NAME: this run reads shards
    train_data_overrides() { ! streams "$1" || printf '%s\n' "data.format=shar" "data.shar_dir=$exp_dir/shar"; }
    # the shared train_model (egs/utils/data_stages.sh), preceded by the shard writing
    eval "$(declare -f train_model | sed '1s/^train_model/train_model_from_files/')"
    train_model() { ! streams "$1" || write_train_shards "$2"; train_model_from_files "$@"; }
fi
