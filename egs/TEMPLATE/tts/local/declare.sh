# shellcheck shell=bash
# What a TTS family declares to the template (egs/TEMPLATE/tts/run.sh): options, configs, forwarded argument
# strings, the stage list and results sections, and the help text built from them. Bash 3.2-safe (no
# associative arrays): declarations are kept in plain strings.

option_lines="" config_names="" forward_args="" forward_lines="" eval_kinds="" standard_args="prepare train infer eval"
speakers=table title="" about="" train_stage=train

# help_line "--OPTION META" "help[\nmore lines]" [default]: one option of the help text (continuations indented).
help_line() {
    local first=true line
    while IFS= read -r line; do
        if $first && [ ${#1} -gt 26 ]; then
            printf '  %s\n%29s%s' "$1" "" "$line"
            first=false
        elif $first; then
            printf '  %-26s %s' "$1" "$line"
            first=false
        else
            printf '\n%29s%s' "" "$line"
        fi
    done <<<"$2"
    [ -z "${3:-}" ] && printf '\n' || printf ' [%s]\n' "$3"
}

# recipe_option NAME DEFAULT "META" "help": the option --NAME (default shown in brackets when not empty).
recipe_option() {
    printf -v "$1" '%s' "$2"
    recipe_options+=" $1"
    option_lines+="$(help_line "--$1${3:+ $3}" "$4" "$2")"$'\n'
}

# recipe_config NAME "help" [DATASET_PATTERN=FILE ...]: a config option; FILE (relative to the recipe folder)
# is the default of the first pattern matching --dataset (patterns as in `case`: mini, ljspeech, "*").
recipe_config() {
    local var="$1" help="$2" pair shown=""
    shift 2
    for pair in "$@"; do
        case "${pair%%=*}" in '*') shown+="${shown:+; }others: ${pair#*=}" ;; *) shown+="${shown:+; }${pair%%=*}: ${pair#*=}" ;; esac
    done
    printf -v "$var" '%s' ""
    printf -v "${var}_defaults" '%s' "$*"
    config_names+=" $var"
    recipe_options+=" $var"
    option_lines+="$(help_line "--$var FILE" "$help${shown:+$'\n'[$shown]}")"$'\n'
}

# recipe_args NAME "help": --NAME_args "..." (words forwarded to a Python CLI), split into the array NAME_extra.
recipe_args() {
    printf -v "$1_args" '%s' ""
    recipe_options+=" $1_args"
    forward_args+=" $1"
    forward_lines+="$(help_line "--$1_args \"...\"" "$2")"$'\n'
}

# eval_kind KIND "heading": the results.md section of the outputs EXP_DIR/infer/KIND (evaluation stage).
eval_kind() {
    eval_kinds+="$1|$2"$'\n'
}

eval_heading() {
    printf '%s' "$eval_kinds" | sed -n "s/^$1|//p" | head -n 1
}

stage_list() { printf '%s\n' "$stages" | sed -n 's/^\([a-z_0-9][a-z_0-9]*\).*/\1/p'; }
stage_name_of() { stage_list | sed -n "$(($1 + 1))p"; }
stage_number_of() { stage_list | awk -v name="$1" '$0 == name { print NR - 1; exit }'; }

# The function that runs stage NAME: the family's hook stage_NAME, else the template's tts_NAME.
stage_function() {
    if declare -F "stage_$1" >/dev/null; then
        printf 'stage_%s' "$1"
    elif declare -F "tts_$1" >/dev/null; then
        printf 'tts_%s' "$1"
    else
        die "stage $1: no function stage_$1 in this recipe (and the template has no tts_$1)"
    fi
}

default_stage_help() {
    case "$1" in
        data) printf '%s\n' "mini: the bundled corpus (+ --synthetic_speakers espeak-ng/flite voices, labelled" \
            "synthetic); ljspeech|vctk|libritts: DATA_DIR, downloaded into it when reachable; custom: a folder" \
            "of audio (DATA_DIR, required)" ;;
        manifests) echo "JSONL manifests with seeded train/valid/test splits (the same splits in every recipe)" ;;
        train) echo "train $title (bins/train.py) -> EXP_DIR/${model_dir:-MODEL_TYPE}; speakers with transcripts become its" \
            "table" ;;
        inference) echo "the test split's seeded job lists ($infer_kinds) through bins/infer.py -> EXP_DIR/infer" ;;
        evaluation) echo "WER/CER, speaker similarity, F0, MCD, ... -> EXP_DIR/eval/results.md" ;;
    esac
}

# "  N name         help" lines of the stage list (a stage without help of its own gets the template's).
stage_help() {
    local number=-1 line stage text
    while IFS= read -r line; do
        case "$line" in
            "") ;;
            [a-z]*)
                number=$((number + 1))
                stage="${line%% *}"
                text="$(printf '%s' "${line#"$stage"}" | sed 's/^ *//')"
                [ -n "$text" ] || text="$(default_stage_help "$stage")"
                printf '  %s %-12s %s\n' "$number" "$stage" "$(printf '%s' "$text" | sed '2,$s/^/                 /')" ;;
            *) printf '                 %s\n' "$(printf '%s' "$line" | sed 's/^ *//')" ;;
        esac
    done <<<"$stages"
}

# After `recipe`: the stage range, the standard forwarded arguments and the help text.
finish_declarations() {
    local arg at own_lines="$forward_lines"
    last_stage=$(($(stage_list | wc -l) - 1))
    stop_stage="$last_stage"
    model_dir="${model_dir:-$family}"
    forward_lines=""
    for arg in $standard_args; do
        case "$arg" in
            prepare) at="$(stage_number_of manifests)"; recipe_args prepare "stage ${at}'s preparer (key=value, e.g. \"valid=2\")" ;;
            train) at="$(stage_number_of "$train_stage")"; recipe_args train "extra overrides for bins/train.py${at:+ of stage $at}" ;;
            infer) at="$(stage_number_of inference)"; recipe_args infer "extra bins/infer.py options of stage $at (e.g. \"--seed 7\")" ;;
            eval) at="$(stage_number_of evaluation)"; recipe_args eval "bins/evaluate.py options of stage $at (e.g. \"--asr whisper --asr_model DIR\")" ;;
        esac
    done
    forward_lines+="$own_lines"
    eval_kind tts "TTS (test-split text; reference = the real recording)"
    eval_kind vc "Voice conversion (source = test utterance, target = another speaker; reference = the source)"
    eval_kind cont "Continuation (first 3 s of the test clip + its whole transcript; reference = the clip)"
    help_message="Usage: $0 [options]      ($title${about:+: $about})

Stages (run the contiguous range --stage..--stop_stage; finished stages leave EXP_DIR/.done/stageN.*.done and
are skipped on a rerun; --force or deleting a marker reruns them):
$(stage_help)

Options (defaults in brackets):
$(corpus_options_help "${family:-MODEL_TYPE}")
$(help_line "--seed N" "seed of the splits, training and sampling" "$seed")
${option_lines}$(help_line "--synthetic_speakers N" "mini only: synthetic espeak-ng/flite speakers to add, 0 for none" "$synthetic_speakers")
$(help_line "--download true|false" "allow stage 0 to download public corpora" "$download")
$(help_line "--force" "rerun the selected stages even if their .done markers exist")

Forwarding options to the Python CLIs:
$(help_line "--a.b.c VALUE" "any dotted key is a config override of the training stages, e.g. --train.max_steps 20")
${forward_lines}Any other option is rejected. Environment: ECHELON_PYTHON picks the interpreter [.venv/bin/python]."
}

# Configs not given on the command line take their dataset's default; all become absolute paths.
resolve_configs() {
    local var pair file defaults pairs
    for var in $config_names; do
        file="${!var}"
        defaults="${var}_defaults"
        read -r -a pairs <<<"${!defaults}"
        if [ -z "$file" ]; then
            for pair in ${pairs[@]+"${pairs[@]}"}; do
                # shellcheck disable=SC2254  # the pattern is meant to match as a pattern
                case "$dataset" in ${pair%%=*}) file="$recipe_dir/${pair#*=}"; break ;; esac
            done
        fi
        [ -z "$file" ] || printf -v "$var" '%s' "$(abspath "$file")"
    done
}

# Every declared config that is set is a training config its family's schema accepts (egs/utils/corpus_setup.sh:
# check_config_files), checked once and before any stage runs, as early as the configs are known.
check_recipe_configs() {
    local var pairs=()
    [ "${configs_checked:-false}" = false ] || return 0
    for var in $config_names; do [ -z "${!var}" ] || pairs+=("$var=${!var}"); done
    check_config_files training ${pairs[@]+"${pairs[@]}"}
    configs_checked=true
}

# The family of a config run through the template directly: family (its model_type) and, for --speakers auto,
# whether its experiment config takes a speaker table (local/family.py).
config_family() {
    local found
    [ -f "$config" ] || die "config not found: $config"
    found="$("$python" "$template_dir/local/family.py" "$config")" || exit 1
    family="${found%%$'\t'*}"
    [ "$speakers" != auto ] || speakers="${found#*$'\t'}"
}
