#!/usr/bin/env bash
# HierSpeech++ recipe on the TTS template (egs/TEMPLATE/tts/run.sh): data -> manifests -> SSL/F0 features ->
# synthesizer -> TTV -> SpeechSR -> TTS/VC/48 kHz -> evaluation. Its own stages: local/stages.sh.
recipe() {
    family=hierspeechpp title=HierSpeech++ about="data, features, training, TTS/VC, 48 kHz SR, evaluation"
    synthetic_speakers=2 model_dir=synth infer_kinds="tts vc tts48k sr48k" job_style=prompts standard_args="prepare eval"
    shar_features="f0 ssl" shar_runs=synth  # --data_format shar: the synthesizer streams (TTV, SpeechSR read files)
    stages="data
manifests
features     SSL (layer 7), log-F0 (YAAPT) and spectrogram features; picks the SSL model (see --ssl_model)
synth        train the hierarchical synthesizer (bins/train.py)
ttv          train Text-to-Vec (skipped, saying so, when the corpus has no transcripts)
speechsr     SpeechSR: the released 16->48 kHz weights, and/or train one (--sr_train)
inference    TTS and voice conversion over the test split, 48 kHz upsampling of a real clip
evaluation"
    recipe_option nj 2 N "parallel jobs for feature extraction"
    recipe_option conf_set auto "auto|tiny|full" "default configs: tiny = conf/*_tiny.json5 (CPU, a few dozen steps),
full = conf/{synth,ttv,speechsr}.json5; auto: tiny for mini or without a GPU, else full"
    recipe_config config "synthesizer config [conf/synth.json5 or conf/synth_tiny.json5]"
    recipe_config ttv_config "TTV config [conf/ttv.json5 or conf/ttv_tiny.json5]"
    recipe_config sr_config "SpeechSR training config [conf/speechsr.json5 or conf/speechsr_tiny.json5]"
    recipe_option ssl_model auto "ID|DIR|auto|random" "SSL model: auto = facebook/mms-300m when cached or reachable,
else a small RANDOMLY INITIALISED wav2vec 2.0 (announced; fine for plumbing, not for quality)"
    recipe_option sr_train auto "auto|true|false" "train a SpeechSR in stage 5 (auto: true for mini, a few steps)"
    recipe_option sr_weights released "released|trained" "SpeechSR used for 48 kHz output in stage 6"
    recipe_args extract "stage 2's bins/extract_features.py"
    recipe_args synth "extra arguments for stage 3's bins/train.py (e.g. \"model.hidden_channels=64\")"
    recipe_args ttv "the same for stage 4"
    recipe_args sr "the same for stage 5"
    recipe_args vc "stage 6: the VC command line (bins/infer.py)"
    recipe_args tts "stage 6: the TTS command line (bins/infer.py)"
    eval_kind tts "TTS (test-split text, prompt = another clip of the same speaker; reference = the real recording)"
    eval_kind vc "Voice conversion (source = test utterance, prompt = another real speaker; reference = the source)"
}
. "$(dirname "${BASH_SOURCE[0]}")/local/stages.sh"
. "$(dirname "${BASH_SOURCE[0]}")/../../TEMPLATE/tts/run.sh"
