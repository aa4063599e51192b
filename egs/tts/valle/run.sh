#!/usr/bin/env bash
# VALL-E recipe on the TTS template (egs/TEMPLATE/tts/run.sh): data -> manifests -> phonemes + codec codes ->
# training -> zero-shot TTS from a prompt and its transcript + continuation -> evaluation.
recipe() {
    family=valle title=VALL-E about="codec language model, zero-shot TTS from a prompt and its transcript"
    job_style=prompts_text infer_kinds="tts cont" speakers=none
    stages="data
manifests
features     espeak phoneme tokens, the symbol table and EnCodec codes (models/tts/valle/prepare.py)
train        train VALL-E (bins/train.py; train.train_stage 0 = AR + NAR jointly)
inference    cross-sentence zero-shot TTS (prompt = another clip of the speaker + its transcript) and
             continuation (first 3 s of the test clip + its transcript) (bins/infer.py)
evaluation"
    recipe_config config "VALL-E config" mini=conf/valle_tiny.json5 "*=conf/valle_libritts.json5"
    recipe_option codec auto NAME "facebook/encodec_24khz, a local folder, or tiny-random (random weights: pipeline
checks only); auto: tiny-random for mini, facebook/encodec_24khz otherwise"
    recipe_args features "options of stage 2's models/tts/valle/prepare.py"
    eval_kind tts "Zero-shot TTS (cross-sentence: prompt = another clip of the speaker + its transcript)"
}

check_options() {
    require_python_packages transformers
    [ "$codec" != auto ] || case "$dataset" in mini) codec=tiny-random ;; *) codec=facebook/encodec_24khz ;; esac
    [ "$codec" != tiny-random ] || log "codec: TINY RANDOM EnCodec (random weights): outputs check the pipeline, not VALL-E"
}

results_notes() {
    [ "$codec" = tiny-random ] || return 0
    printf '\n**Codes came from a tiny RANDOM EnCodec**: these numbers check the pipeline, not VALL-E.\n'
}

stage_features() { # the symbol table covers every split's transcripts: a tiny train split misses phonemes
    local splits=("$manifests/train.jsonl" "$manifests/valid.jsonl" "$manifests/test.jsonl") list
    require_command espeak-ng "phonemising the transcripts"
    py_module models.tts.valle.prepare --manifests "${splits[@]}" --out_dir "$features" --codec "$codec" \
        --symbols_from "${splits[@]}" ${features_extra[@]+"${features_extra[@]}"} || die "stage 2: no features"
    for list in "$features/phonemes_bad_items.tsv" "$features/bad_items.tsv"; do
        [ ! -s "$list" ] || log "items left out: $(wc -l <"$list" | tr -d ' ') in $list"
    done
}

stage_train() {
    [ -s "$features/symbols.json" ] || die "no symbol table in $features: run stage 2 first"
    tts_train "data.features_dir=$features" "data.codec=$codec" "data.symbols=$(tr -d '\n' <"$features/symbols.json")"
}
. "$(dirname "${BASH_SOURCE[0]}")/../../TEMPLATE/tts/run.sh"
