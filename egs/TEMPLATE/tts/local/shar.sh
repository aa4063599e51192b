# shellcheck shell=bash
# --data_format shar: every training run of the recipe streams Lhotse Shar shards of the train split instead of
# reading the manifest (data.format=shar, data.shar_dir=EXP_DIR/shar; models/base/shar_stream.py). The shards
# are written before the first training run by bins.extract_features --format shar: the audio at the rate the
# config's family trains at (--audio_rate_of: its typed config, defaults included) plus the per-item features a
# family lists in shar_features (converted from EXP_DIR/features, its features stage's output). Writing is
# resumable per shard, so a rerun only finishes what is missing.
# A family whose other training runs cannot stream yet names those that can in shar_runs (default: all).
[ "$data_format" = files ] || [ "$data_format" = shar ] || die "--data_format $data_format: expected files or shar"

write_train_shards() {  # write_train_shards CONFIG
    local names=() features_args=(--features none)
    read -r -a names <<<"${shar_features:-}"
    [ ${#names[@]} -eq 0 ] || features_args=(--features "${names[@]}" --from_features "$features")
    log "writing Lhotse Shar shards of $manifests/train.jsonl (audio at the rate $1 trains at${shar_features:+; $shar_features}) -> $exp_dir/shar"
    py_module bins.extract_features --manifest "$manifests/train.jsonl" --out_dir "$exp_dir/shar" --format shar \
        --audio_rate_of "$1" "${features_args[@]}" || die "could not write the shards into $exp_dir/shar"
}

if [ "$data_format" = shar ]; then
    for hook in train_data_overrides before_training; do
        declare -F "$hook" >/dev/null && die "--data_format shar: this recipe already sets $hook"
    done
    streams() { [ -z "${shar_runs:-}" ] || [[ " $shar_runs " == *" $1 "* ]]; }  # streams NAME: this run reads shards
    # the hooks of the shared train_model (egs/utils/data_stages.sh): write the shards first, then read them
    before_training() { ! streams "$1" || write_train_shards "$2"; }
    train_data_overrides() { ! streams "$1" || printf '%s\n' "data.format=shar" "data.shar_dir=$exp_dir/shar"; }
fi
