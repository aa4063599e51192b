# shellcheck shell=bash
# Options, option checks and experiment/corpus directories shared by the corpus-based recipes
# (egs/tts/hierspeechpp, egs/tts/vits, egs/vocoder/*). A recipe sources this file, then
#
#     corpus_recipe_options LAST_STAGE SYNTHETIC_SPEAKERS   # shared defaults + recipe_options; add its own after
#     help_message="... $(corpus_options_help EXP_PREFIX) ..."
#     . egs/utils/parse_options.sh "$@"
#     setup_corpus_recipe DEFAULT_EXP_NAME                  # validate, resolve directories
#     split_forward_args prepare train ...                  # --prepare_args "..." -> array prepare_extra, ...

# The options every corpus recipe takes, with their defaults (help_message shows them, so call this first).
corpus_recipe_options() {
    last_stage="$1"
    stage=0 stop_stage="$1" dataset=mini data_dir="" exp_dir="" ngpu=1 seed=1234 config=""
    synthetic_speakers="$2" download=true force=false prepare_args="" eval_args=""
    recipe_options="stage stop_stage dataset data_dir exp_dir ngpu seed config synthetic_speakers download force
prepare_args eval_args"
}

# Help lines of the first shared options (stage range, corpus, directories, GPUs); $1 names exp/<$1>_DATASET,
# the default EXP_DIR unless the recipe set exp_dir itself.
corpus_options_help() {
    cat <<EOF
  --stage N --stop_stage M   stage range [$stage..$stop_stage]
  --dataset NAME             mini | ljspeech | vctk | libritts | custom [$dataset]
  --data_dir DIR             corpus location [mini: egs/mini/corpus; others: EXP_DIR/downloads]
  --exp_dir DIR              everything this recipe writes [${exp_dir:-exp/$1_DATASET}]
  --ngpu N                   0: CPU only; 1: one GPU if visible, else CPU; >1: accelerate launch [$ngpu]
EOF
}

# Split each --NAME_args string into the array NAME_extra (words; quotes inside are not interpreted, so keep
# values free of spaces). Expand it bash-3.2-safely as ${NAME_extra[@]+"${NAME_extra[@]}"}.
split_forward_args() {
    local name var
    for name in "$@"; do
        var="${name}_args"
        read -r -a "${name}_extra" <<<"${!var}"
    done
}

abspath() { # absolute path of $1 (which need not exist), relative to the current directory
    case "$1" in /*) printf '%s' "$1" ;; *) printf '%s/%s' "$PWD" "${1#./}" ;; esac
}

# Validate the shared options, make exp_dir and data_dir absolute, check EXP_DIR against the corpus it is bound
# to (EXP_DIR/recipe_settings: later stages need not repeat --data_dir), fill in the default corpus location and
# set manifests. The binding itself is written by bind_exp_dir when the first stage starts. $1 is the experiment name under exp/ when --exp_dir is not given.
setup_corpus_recipe() {
    local default_name="$1" prev_dataset prev_data_dir
    [ ${#positional_args[@]} -eq 0 ] || die "unexpected argument '${positional_args[0]}' (options look like --name value)"
    check_stage_range 0 "$last_stage"
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
    manifests="$exp_dir/manifests"
    # Written by run_stage before the first stage, i.e. only once the recipe's own option checks passed too:
    # a call rejected for its options leaves EXP_DIR untouched (and not tied to this corpus).
    before_first_stage=bind_exp_dir
}

# Create EXP_DIR and record its corpus in EXP_DIR/recipe_settings (checked by setup_corpus_recipe next time).
bind_exp_dir() {
    mkdir -p "$exp_dir"
    printf 'dataset=%s\ndata_dir=%s\n' "$dataset" "$data_dir" >"$exp_dir/recipe_settings.tmp"
    mv -f "$exp_dir/recipe_settings.tmp" "$exp_dir/recipe_settings"
}

# check_config_files KIND OPTION=FILE ...: each FILE is a config its schema accepts, all checked in one Python
# process before any stage runs, so a malformed config stops the call at once (one line naming the option, the
# file and the reason) instead of after the data stages. KIND training: the schema of the registered trainer its
# model_type names (what bins/train.py validates); benchmark: a benchmark file's (evaluation/benchmark/config.py).
check_config_files() {
    local kind="$1" problem
    shift
    [ $# -gt 0 ] || return 0
    problem="$(cd "$repo_root" && PYTHONWARNINGS=ignore "$python" - "$kind" "$@" 2>&1 <<'PY'
import sys

from utils.config import load_config, validate


def schema(kind, raw):
    if kind == "benchmark":
        from evaluation.benchmark.config import BenchmarkConfig

        return BenchmarkConfig
    from utils.registry import get

    if not raw.get("model_type"):
        raise ValueError("no model_type")
    return get("trainer", raw["model_type"]).config_class


kind = sys.argv[1]
what = "a training config of a registered family" if kind == "training" else f"a valid {kind} file"
for pair in sys.argv[2:]:
    option, path = pair.split("=", 1)
    try:
        raw = load_config(path)
        validate(raw, schema(kind, raw))
    except Exception as err:  # noqa: BLE001 - any reason, in one line: the recipe stops with it
        sys.exit(f"--{option} {path}: not {what} ({' '.join(str(err).split())})")
PY
)" || die "$(printf '%s\n' "${problem:-could not check the configs with $python}" | tail -n 1)"
}
