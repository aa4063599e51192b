# shellcheck shell=bash
# Stage runner and .done markers shared by every Echelon recipe.
#
# A recipe defines one shell function per stage and calls, for each,
#
#     run_stage 3 train_synth stage_train_synth
#
# with the variables stage, stop_stage, exp_dir and force set (egs/utils/parse_options.sh). run_stage
#   - skips the stage silently unless stage <= N <= stop_stage (contiguous ranges, ESPnet style);
#   - skips it, saying so, when "$exp_dir/.done/stage<N>.<name>[.<scope>].done" exists and force is false;
#   - runs the function in a subshell with errexit on; on success writes the marker (atomically) with the time
#     taken, on failure stops the recipe naming the stage and how to resume.
# Removing a marker (or --force) reruns that stage. A stage that started but did not finish (Ctrl-C, a killed
# job, a failure) leaves "stage<N>.<name>.started": the next run resumes it (see rerun_flag). Stages talk to
# each other through files only.

log() {
    printf '%s [%s] %s\n' "$(date '+%Y-%m-%d %H:%M:%S')" "${0##*/}" "$*" >&2
}

die() {
    printf '%s: error: %s\n' "${0##*/}" "$*" >&2
    exit 1
}

# Print a notice framed so that it cannot be missed in a long log (e.g. a random SSL model, synthetic data).
announce() {
    local line="================================================================================"
    printf '%s\n' "$line" "NOTICE: $*" "$line" >&2
}

# The rerun option of a batch CLI (bins/infer.py, echelon-benchmark) inside a stage: --skip_existing when the
# stage is resuming a run that stopped midway (Ctrl-C, a killed job, a failure), so it finishes only what is
# missing; --overwrite when it runs afresh (first run, a removed marker, --force), so outputs of an earlier
# model are replaced, never reused.
rerun_flag() {
    if [ "${stage_resuming:-false}" = true ]; then echo --skip_existing; else echo --overwrite; fi
}

# A recipe whose stage works on a chosen subset (e.g. the fine-tuning recipe's --readers) sets
# stage_scope_<name> to it: the marker then names that subset, so the stage run on another subset is not skipped.
stage_marker() {
    local scope_var="stage_scope_$2" scope words
    read -r -d '' -a words <<<"${!scope_var:-}" || true
    scope="$(IFS=+; printf '%s' "${words[*]}" | tr '/' '_')"
    [ ${#scope} -le 120 ] || scope="$(printf '%s' "$scope" | cksum | cut -d' ' -f1)"
    printf '%s/.done/stage%s.%s%s.done' "$exp_dir" "$1" "$2" "${scope:+.$scope}"
}

# True when stage number $1 lies in [stage, stop_stage].
stage_selected() {
    [ "$stage" -le "$1" ] && [ "$stop_stage" -ge "$1" ]
}

run_stage() {
    local number="$1" name="$2" fn="$3" marker rc start elapsed hook
    stage_selected "$number" || return 0
    # The first selected stage: every option check has passed, so the recipe's one-time set-up may write now
    # (a corpus recipe binds EXP_DIR to its corpus there, egs/utils/corpus_setup.sh: bind_exp_dir).
    if [ -n "${before_first_stage:-}" ]; then
        hook="$before_first_stage"
        before_first_stage=""
        "$hook"
    fi
    marker="$(stage_marker "$number" "$name")"
    if [ -f "$marker" ] && [ "${force:-false}" != true ]; then
        log "stage $number ($name): already done ($marker); skipping (remove it or pass --force to rerun)"
        return 0
    fi
    stage_resuming=false
    if [ -f "${marker%.done}.started" ] && [ "${force:-false}" != true ]; then
        stage_resuming=true
        log "stage $number ($name): resuming (it started before and did not finish)"
    else
        log "stage $number ($name): start"
    fi
    start=$(date +%s)
    rm -f "$marker"
    mkdir -p "$(dirname "$marker")"
    : >"${marker%.done}.started"
    set +e
    # errexit must be switched on inside the subshell: it inherits the "set +e" that lets us read its status,
    # and without it a failing command in the middle of a stage went unnoticed (the stage returned its last
    # command's status).
    (
        set -e
        "$fn"
    )
    rc=$?
    set -e
    elapsed=$(($(date +%s) - start))
    if [ "$rc" -ne 0 ]; then
        die "stage $number ($name) failed (exit $rc) after ${elapsed}s; fix it, then rerun with --stage $number"
    fi
    printf 'stage=%s name=%s seconds=%s finished=%s\n' "$number" "$name" "$elapsed" "$(date '+%Y-%m-%dT%H:%M:%S')" \
        >"$marker.tmp"
    mv -f "$marker.tmp" "$marker"
    rm -f "${marker%.done}.started"
    log "stage $number ($name): done in ${elapsed}s"
}

# "0 data, 1 manifests, ...": the stages a recipe documents in its --help text ("  N name  what it does" lines).
documented_stages() {
    printf '%s\n' "${help_message:-}" | sed -nE 's/^  ([0-9]+) +([a-z_0-9]+)( .*)?$/\1 \2/p' | paste -sd, - |
        sed 's/,/, /g'
}

# Check stage/stop_stage are integers in [first, last] and ordered; a stage that does not exist is named
# together with the recipe's stage list.
check_stage_range() {
    local first="$1" last="$2" option value listed
    case "$stage$stop_stage" in
        *[!0-9]*) die "--stage and --stop_stage take integers (got '$stage' and '$stop_stage')" ;;
    esac
    for option in stage stop_stage; do
        value="${!option}"
        if [ "$value" -lt "$first" ] || [ "$value" -gt "$last" ]; then
            listed="$(documented_stages)"
            die "there is no stage $value (--$option $value): stages run from $first to $last${listed:+: $listed}"
        fi
    done
    [ "$stage" -le "$stop_stage" ] || die "--stage $stage is after --stop_stage $stop_stage"
}

# Fail clearly when a Python module the stage wraps does not exist (yet): name the file that is missing.
require_python_module() {
    local module="$1" what="$2" path
    path="$repo_root/$(printf '%s' "$module" | tr '.' '/')"
    [ -f "$path.py" ] || [ -f "$path/__init__.py" ] || [ -f "$path/__main__.py" ] ||
        die "$what is missing: no Python module '$module' ($path.py) in this checkout"
}

# Fail clearly when Python packages are missing from the interpreter the recipe uses: require_python_packages a b
require_python_packages() {
    local missing
    missing="$("$python" -c '
import importlib.util, sys
print(" ".join(n for n in sys.argv[1:] if importlib.util.find_spec(n) is None))' "$@" 2>&1)" ||
        die "cannot run $python to check for Python packages: $missing"
    [ -z "$missing" ] ||
        die "Python packages missing in $python: $missing (run 'make install', or set ECHELON_PYTHON to a Python that has them)"
}

# Fail clearly when a program is not installed: require_command espeak-ng "phonemes for TTV"
require_command() {
    command -v "$1" >/dev/null 2>&1 || die "$1 is not installed (needed for $2); e.g. apt-get install $1"
}

# Evaluate one kind of recipe output (EXP_DIR/infer/<kind> against its job list EXP_DIR/infer/lists/<kind>.jsonl)
# with echelon-evaluate into <out_dir>/<kind>, and append its table under "## <heading>" to <results_file>; a kind
# that did not run is noted as such. Uses the recipe's exp_dir and eval_extra.
#     evaluate_kind hierspeechpp_tts tts "TTS (...)" "$out" "$device" "$results.tmp"
evaluate_kind() {
    local system="$1" kind="$2" heading="$3" out_dir="$4" device="$5" results_file="$6"
    local outputs="$exp_dir/infer/$kind" jobs="$exp_dir/infer/lists/$kind.jsonl"
    if [ ! -s "$jobs" ] || [ ! -d "$outputs" ]; then
        printf '\n## %s\n\nnot run (no %s outputs in %s)\n' "$kind" "$kind" "$exp_dir/infer" >>"$results_file"
        return 0
    fi
    rm -rf "${out_dir:?}/$kind"
    py_module bins.evaluate --system "$system=$outputs" --manifest "$jobs" --out_dir "$out_dir/$kind" \
        --device "$device" ${eval_extra[@]+"${eval_extra[@]}"} >/dev/null
    printf '\n## %s\n\n' "$heading" >>"$results_file"
    sed -n '/^|/,$p' "$out_dir/$kind/summary.md" >>"$results_file"
}
