# shellcheck shell=bash
# Shared body of egs/vocoder/<name>/run.sh: a standalone GAN mel vocoder (models/vocoders/gan).
# The caller sets vocoder_name (hifigan | bigvgan) and recipe_dir, then sources this file with "$@".
# Stages 0-1 (data, manifests) are the shared ones of egs/utils/data_stages.sh; 2 trains, 3 copy-synthesises the test split,
# 4 scores it against the recordings.

. "$recipe_dir/../../utils/env.sh"
. "$repo_root/egs/utils/stage.sh"
. "$repo_root/egs/utils/corpus_setup.sh"

corpus_recipe_options 4 0  # stages 0-4, no synthetic speakers (egs/utils/corpus_setup.sh)
train_args=""
infer_args=""
recipe_options+=" train_args infer_args"

help_message="$(cat <<EOF2
Usage: $0 [options]      (standalone $vocoder_name mel vocoder: data, training, copy synthesis, evaluation)

Stages (contiguous range --stage..--stop_stage; finished stages leave EXP_DIR/.done/stageN.*.done markers):
  0 data         as the HierSpeech++ recipe (mini corpus, public corpora, custom folder of audio)
  1 manifests    JSONL manifests with seeded train/valid/test splits
  2 train        train the vocoder (bins/train.py, model_type gan_vocoder)
  3 inference    copy synthesis of the test split: recording -> log-mel -> vocoder (bins/infer.py)
  4 evaluation   MCD, log-mel L1, MR-STFT, F0 against the recordings -> EXP_DIR/eval/summary.md

Options (defaults in brackets):
$(corpus_options_help "$vocoder_name")
  --seed N                   seed of the splits and training [$seed]
  --config FILE              vocoder config [mini: ${vocoder_name}_tiny.json5, else the full-size config]
  --synthetic_speakers N     mini only: synthetic espeak-ng/flite speakers to add [$synthetic_speakers]
  --download true|false      allow stage 0 to download public corpora [$download]
  --force                    rerun the selected stages even if their .done markers exist
  --a.b.c VALUE              config override for stage 2, e.g. --train.max_steps 20
  --train_args / --prepare_args / --infer_args / --eval_args "..."   extra arguments of stages 2, 1, 3, 4
EOF2
)"

. "$repo_root/egs/utils/parse_options.sh"
setup_corpus_recipe "${vocoder_name}_$dataset"
configs="$repo_root/models/vocoders/gan/configs"
case "$dataset:$vocoder_name" in
    mini:*) default_config="$configs/${vocoder_name}_tiny.json5" ;;
    *:hifigan) default_config="$configs/hifigan_v1.json5" ;;
    *:bigvgan) default_config="$configs/bigvgan_base.json5" ;;
esac
config="$(abspath "${config:-$default_config}")"
check_config_files training "config=$config"  # before stage 0 (egs/utils/corpus_setup.sh)
split_forward_args prepare train infer eval

. "$repo_root/egs/utils/data_stages.sh"  # stage_data, stage_manifests, train_model
require_python_packages numpy soundfile json5 torch

stage_train_vocoder() {
    require_python_module models.vocoders.gan.trainer "the GAN vocoder trainer"
    train_model vocoder "$config" "data.train_manifest=$manifests/train.jsonl" \
        "data.valid_manifest=$manifests/valid.jsonl" ${train_extra[@]+"${train_extra[@]}"}
}

stage_copy_synthesis() {
    [ -d "$exp_dir/vocoder/checkpoints" ] || die "no trained vocoder in $exp_dir/vocoder: run stage 2 first"
    py_module bins.infer --ckpt_dir "$exp_dir/vocoder" --device "$(infer_device "$ngpu")" \
        --jobs "$manifests/test.jsonl" --output_dir "$exp_dir/infer/copy" "$(rerun_flag)" ${infer_extra[@]+"${infer_extra[@]}"}
}

stage_evaluation_vocoder() {
    require_python_module bins.evaluate "the evaluation CLI (echelon-evaluate)"
    py_module bins.evaluate --system "${vocoder_name}=$exp_dir/infer/copy" --manifest "$manifests/test.jsonl" \
        --metrics "${vocoder_metrics:-mcd,log_mel_l1,mrstft,f0}" --out_dir "$exp_dir/eval" \
        ${eval_extra[@]+"${eval_extra[@]}"}
}

log "$vocoder_name: dataset=$dataset data_dir=$data_dir exp_dir=$exp_dir stages $stage..$stop_stage"
run_stage 0 data stage_data
run_stage 1 manifests stage_manifests
run_stage 2 train stage_train_vocoder
run_stage 3 inference stage_copy_synthesis
run_stage 4 evaluation stage_evaluation_vocoder
[ ! -f "$exp_dir/eval/summary.md" ] || cat "$exp_dir/eval/summary.md"
