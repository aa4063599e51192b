# shellcheck shell=bash
# Option checks and experiment/corpus directories shared by the corpus-based recipes (egs/tts/vits,
# egs/vocoder/*; the same conventions as egs/tts/hierspeechpp/run.sh). Source after parse_options.sh, then call
#
#     setup_corpus_recipe FIRST_STAGE LAST_STAGE DEFAULT_EXP_NAME
#
# with the variables stage, stop_stage, dataset, data_dir, exp_dir, ngpu, seed, synthetic_speakers, force set.
# It validates them, makes exp_dir and data_dir absolute, binds an experiment directory to one corpus
# (EXP_DIR/recipe_settings) and fills in the default corpus location.

abspath() { # absolute path of $1 (which need not exist), relative to the current directory
    case "$1" in /*) printf '%s' "$1" ;; *) printf '%s/%s' "$PWD" "${1#./}" ;; esac
}

setup_corpus_recipe() {
    local first="$1" last="$2" default_name="$3" prev_dataset prev_data_dir
    [ ${#positional_args[@]} -eq 0 ] || die "unexpected argument '${positional_args[0]}' (options look like --name value)"
    check_stage_range "$first" "$last"
    case "$dataset" in
        mini | ljspeech | vctk | libritts | custom) ;;
        *) die "--dataset must be one of mini, ljspeech, vctk, libritts, custom (got '$dataset')" ;;
    esac
    case "$ngpu$seed$synthetic_speakers" in
        *[!0-9]*) die "--ngpu, --seed and --synthetic_speakers take non-negative integers" ;;
    esac
    exp_dir="$(abspath "${exp_dir:-exp/$default_name}")"
    [ -z "$data_dir" ] || data_dir="$(abspath "$data_dir")"
    if [ -f "$exp_dir/recipe_settings" ]; then
        prev_dataset="$(sed -n 's/^dataset=//p' "$exp_dir/recipe_settings")"
        prev_data_dir="$(sed -n 's/^data_dir=//p' "$exp_dir/recipe_settings")"
        if [ "$force" != true ]; then
            [ "$prev_dataset" = "$dataset" ] ||
                die "$exp_dir holds dataset '$prev_dataset', not '$dataset': use another --exp_dir (or --force)"
            [ -z "$data_dir" ] || [ "$data_dir" = "$prev_data_dir" ] ||
                die "$exp_dir was prepared from $prev_data_dir, not $data_dir: use another --exp_dir (or --force)"
        fi
        [ -n "$data_dir" ] || data_dir="$prev_data_dir"
    fi
    if [ -z "$data_dir" ]; then
        case "$dataset" in
            mini) data_dir="$repo_root/egs/mini/corpus" ;;
            custom) die "--dataset custom needs --data_dir (a folder of audio files)" ;;
            *) data_dir="$exp_dir/downloads" ;;
        esac
    fi
    mkdir -p "$exp_dir"
    printf 'dataset=%s\ndata_dir=%s\n' "$dataset" "$data_dir" >"$exp_dir/recipe_settings"
}
