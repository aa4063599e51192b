# shellcheck shell=bash
# The fine-tuning recipe's stages and checks on the TTS template (sourced by egs/tts/finetune/run.sh, which
# declares its options): reader folders from the real-speech root, the base voice, one echelon-finetune run per
# reader, the results table. The template's corpus options do not apply (there is no corpus to prepare).

# Option checks after the shared ones (EXP_DIR is not bound yet when they fail): one line each.
check_options() {
    local reader given=""
    [ "$data_dir" = "$repo_root/egs/mini/corpus" ] || given="--data_dir $data_dir"
    [ "$dataset" = mini ] || given="--dataset $dataset" # after --data_dir: another --dataset moves data_dir too
    [ "$synthetic_speakers" = 0 ] || given="--synthetic_speakers $synthetic_speakers"
    [ "$data_format" = files ] || given="--data_format $data_format"
    [ -z "$config" ] || given="--config $config"
    [ -z "$prepare_args$eval_args" ] || given="--prepare_args/--eval_args"
    [ ${#config_overrides[@]} -eq 0 ] || given="--${config_overrides[0]%%=*}"
    [ -z "$given" ] || die "$given does not apply to this recipe (no corpus, no training config): the readers" \
        "come from --real_data; echelon-finetune options go in --finetune_args"
    readers="${readers:-$all_readers}"
    # stages 0 and 2 are done per set of readers: another --readers runs them for those readers
    stage_scope_readers="$readers" stage_scope_finetune="$readers"
    for reader in $readers; do
        case " $all_readers " in *" $reader "*) ;;
            *) die "--readers: unknown reader '$reader'; choose from $all_readers" ;; esac
    done
    printf '%s' "$cpu_minutes" | grep -Eq '^[0-9]*\.?[0-9]+$' && [ -n "$(printf '%s' "$cpu_minutes" | tr -d '0.')" ] ||
        die "--cpu_minutes takes a positive number of minutes (got '$cpu_minutes')"
    case "$threads" in
        all) threads="$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)" ;;
        "" | 0 | *[!0-9]*) die "--threads takes a positive integer or all (got '$threads')" ;;
    esac
    real_data="$(abspath "$real_data")"
    ! stage_selected "$(stage_number_of readers)" || [ -f "$real_data/manifest.csv" ] ||
        die "--real_data $real_data: no manifest.csv there (the real-speech root; set it or ECHELON_REAL_DATA)"
}

# ------------------------------------------------------------------------------------------------ stage 0
stage_readers() {
    "$python" "$recipe_dir/local/make_readers.py" --real_data "$real_data" --out_dir "$exp_dir/readers" \
        --readers "$readers"
}

# ------------------------------------------------------------------------------------------------ stage 1
stage_base() {
    if [ -d "$exp_dir/joe" ] && [ -n "$(ls -A "$exp_dir/joe")" ]; then
        log "base voice: $exp_dir/joe exists, kept (remove it to convert again)"
        return 0
    fi
    py_module bins.convert_piper joe "$exp_dir/joe"
}

# ------------------------------------------------------------------------------------------------ stage 2
# One run per reader into EXP_DIR/<reader>; a run that exists is resumed (--resume keeps its prepared data,
# scores and best voice, and trains on until --cpu_minutes). A reader that fails does not stop the others;
# Ctrl-C (echelon-finetune exits 130/143 with its checkpoint saved) stops the stage.
stage_finetune() {
    local reader rc failed=() resume
    require_python_module bins.finetune "echelon-finetune"
    [ -d "$exp_dir/joe/checkpoints" ] || die "no base voice in $exp_dir/joe: run stage $(stage_number_of base) first"
    for reader in $readers; do
        [ -d "$exp_dir/readers/$reader" ] ||
            die "no reader folder $exp_dir/readers/$reader: run stage $(stage_number_of readers) first"
    done
    for reader in $readers; do
        resume=""
        [ -z "$(ls -A "$exp_dir/$reader" 2>/dev/null)" ] || resume=--resume
        log "echelon-finetune on $reader (${cpu_minutes} CPU minutes, $threads threads${resume:+, resumed})"
        rc=0
        py_module bins.finetune --audio_dir "$exp_dir/readers/$reader" --base_ckpt_dir "$exp_dir/joe" \
            --exp_dir "$exp_dir/$reader" --cpu_minutes "$cpu_minutes" --threads "$threads" --seed "$seed" \
            ${resume:+"$resume"} ${finetune_extra[@]+"${finetune_extra[@]}"} || rc=$?
        case "$rc" in
            0) ;;
            130 | 143) die "stopped during $reader (its checkpoint is saved):" \
                "rerun with --stage $(stage_number_of finetune) to resume" ;;
            *) failed+=("$reader") ;;
        esac
    done
    [ ${#failed[@]} -eq 0 ] || die "echelon-finetune failed for ${failed[*]} (its error is above; the other" \
        "readers ran); rerun with --stage $(stage_number_of finetune) after fixing it"
}

# ------------------------------------------------------------------------------------------------ stage 3
# Every run in EXP_DIR (not only this call's --readers), the recipe's readers first in their order.
stage_results() {
    local files=() reader path
    for reader in $all_readers; do
        [ ! -f "$exp_dir/$reader/results.json" ] || files+=("$exp_dir/$reader/results.json")
    done
    for path in "$exp_dir"/*/results.json; do
        reader="$(basename "$(dirname "$path")")"
        case " $all_readers " in *" $reader "*) ;; *) [ ! -f "$path" ] || files+=("$path") ;; esac
    done
    [ ${#files[@]} -gt 0 ] || die "no $exp_dir/<reader>/results.json: run stage $(stage_number_of finetune) first"
    "$python" "$recipe_dir/local/results_table.py" "${files[@]}" --plot "$exp_dir/sim_vs_minutes.png" \
        >"$exp_dir/RESULTS.md.tmp"
    mv -f "$exp_dir/RESULTS.md.tmp" "$exp_dir/RESULTS.md"
    log "results of ${#files[@]} run(s): $exp_dir/RESULTS.md"
    cat "$exp_dir/RESULTS.md"
}
