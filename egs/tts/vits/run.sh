#!/usr/bin/env bash
# VITS recipe (baseline for HierSpeech++) on the TTS template (egs/TEMPLATE/tts/run.sh): data -> manifests ->
# training -> TTS of the test sentences with their speakers and voice conversion between speakers -> evaluation.
recipe() {
    family=vits title=VITS about="data, training, TTS and voice conversion between speakers, evaluation"
    synthetic_speakers=2 infer_kinds="tts vc"
    recipe_config config "VITS config" mini=conf/vits_tiny.json5 ljspeech=conf/vits_ljspeech.json5 \
        "*=conf/vits_multispeaker.json5"
}
. "$(dirname "${BASH_SOURCE[0]}")/../../TEMPLATE/tts/run.sh"
