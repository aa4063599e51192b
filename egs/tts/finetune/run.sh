#!/usr/bin/env bash
# Fine-tuning recipe on the TTS template (egs/TEMPLATE/tts/run.sh): the Piper voice joe fine-tuned on real
# readers (LJSpeech with and without transcripts, VCTK p225-p228, LJSpeech subsets for a curve of SIM against
# minutes of data), one `echelon-finetune` run per reader, and one table of them. No corpus manifests: this
# recipe declares its own stages (local/stages.sh). On your own recordings run `echelon-finetune` directly.
recipe() {
    family=finetune title="Fine-tuning" standard_args="" requires_command=""
    about="the joe voice fine-tuned on real readers, one echelon-finetune run each (CPU), one table.
The template's corpus options (--dataset, --data_dir, --ngpu, --data_format, --synthetic_speakers, --download,
--a.b.c) do not apply here"
    stages="readers      reader folders EXP_DIR/readers/<reader> (wavs, transcripts or none, SOURCES.md) from --real_data
base         the base voice: echelon-convert-piper joe EXP_DIR/joe (once; kept when it exists)
finetune     echelon-finetune per reader -> EXP_DIR/<reader> (--cpu_minutes each; an earlier run is resumed)
results      EXP_DIR/RESULTS.md: a row per reader, SIM against minutes of data (+ sim_vs_minutes.png)"
    exp_dir=exp/finetune
    all_readers="$("$python" "$recipe_dir/local/make_readers.py" --list)" || die "could not list the readers"
    recipe_option real_data "${ECHELON_REAL_DATA:-$(cd "$repo_root/.." && pwd)/shared/data/real}" DIR \
        "the real-speech root (its manifest.csv lists the clips; env ECHELON_REAL_DATA)"
    recipe_option readers "" "\"NAME ...\"" "the readers to build and fine-tune on [all]: ljspeech (32 clips,
transcripts given), ljspeech_notext (the same, Whisper transcribes), vctk_p225 .. vctk_p228 (10 clips each),
ljspeech_15s, ljspeech_30s, ljspeech_1min (the first LJSpeech clips until that much audio: the curve)"
    recipe_option cpu_minutes 30 N "training budget of each run in CPU minutes (all threads)"
    recipe_option threads all "N|all" "CPU threads of each run (all: every core)"
    recipe_args finetune "extra echelon-finetune options (e.g. \"--max_steps 500 --asr_model tiny.en\")"
}
. "$(dirname "${BASH_SOURCE[0]}")/local/stages.sh"
. "$(dirname "${BASH_SOURCE[0]}")/../../TEMPLATE/tts/run.sh"
