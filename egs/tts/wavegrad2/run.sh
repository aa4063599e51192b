#!/usr/bin/env bash
# WaveGrad 2 recipe on the TTS template (egs/TEMPLATE/tts/run.sh): data -> manifests -> training -> few-step
# schedule search -> TTS with the searched schedule -> evaluation.
recipe() {
    family=wavegrad2 title="WaveGrad 2" about="data, training, schedule search, TTS, evaluation" synthetic_speakers=2
    stages="data
manifests
train        train WaveGrad 2 (bins/train.py, duration-bucketed batches); durations from the internal aligner
             (the corpora here carry none); speakers with transcripts become the speaker table
schedule     search a --infer_steps schedule on the validation items (models/tts/wavegrad2/schedule_search.py)
inference    TTS of the test sentences with their speakers (bins/infer.py), the searched schedule
evaluation"
    recipe_config config "WaveGrad 2 config" mini=conf/wavegrad2_tiny.json5 "*=conf/wavegrad2_paper.json5"
    recipe_option infer_steps 6 N "refinement steps of the searched schedule and of inference"
    recipe_option search_items 2 N "validation items scoring each candidate schedule"
    recipe_option search_first "1e-5,1e-3" LIST "comma-separated grid of beta_1"
    recipe_option search_penultimate "0.05,0.3" LIST "comma-separated grid of beta_{N-1}"
}

check_options() {
    case "$infer_steps$search_items" in
        '' | *[!0-9]*) die "--infer_steps and --search_items take positive integers" ;;
    esac
}

stage_schedule() {
    [ -d "$exp_dir/wavegrad2/checkpoints" ] || die "no trained WaveGrad 2 in $exp_dir/wavegrad2: run stage 2 first"
    py_module models.tts.wavegrad2.schedule_search --ckpt_dir "$exp_dir/wavegrad2" \
        --manifest "$manifests/valid.jsonl" --steps "$infer_steps" --max_items "$search_items" \
        --first_betas "$search_first" --penultimate_betas "$search_penultimate" --seed "$seed" \
        --output "$exp_dir/wavegrad2/schedule_${infer_steps}.json"
}

stage_inference() { # the searched schedule when stage 3 ran, else plain --infer_steps steps
    local schedule="$exp_dir/wavegrad2/schedule_${infer_steps}.json"
    [ -f "$schedule" ] || { log "no searched schedule ($schedule): using $infer_steps steps"; schedule=""; }
    if [ -n "$schedule" ]; then tts_inference --schedule "$schedule"; else tts_inference --steps "$infer_steps"; fi
}
. "$(dirname "${BASH_SOURCE[0]}")/../../TEMPLATE/tts/run.sh"
