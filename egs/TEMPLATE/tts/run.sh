#!/usr/bin/env bash
# The TTS recipe template (ESPnet's egs/TEMPLATE manner): data -> manifests -> [features] -> train -> inference
# -> evaluation, the same options, stage conventions, splits, job lists and results table for every TTS family.
#
# A family with no shell of its own runs it directly with its config (the family is the config's model_type):
#     egs/TEMPLATE/tts/run.sh --config models/example/toy_tts/configs/mini.json5 --dataset mini
# A family recipe (egs/tts/<family>/run.sh) defines the function `recipe` (its declarations, below), the stage
# hooks it needs (stage_<name> functions), then sources this file. Declarations, inside `recipe`:
#     family=vits title=VITS about="..."   exp/<family>_<dataset>, the trained model in EXP_DIR/<model_dir>
#     model_dir=vits job_style=speakers infer_kinds="tts vc" synthetic_speakers=2    (defaults in defaults below)
#     stages="data manifests train inference evaluation"   the stage list; a line "name  help" per stage
#     recipe_config NAME "help" mini=conf/a.json5 ljspeech=conf/b.json5 "*=conf/c.json5"   a config option
#     recipe_option NAME DEFAULT "METAVAR help"                                          any other option
#     recipe_args NAME "help"             --NAME_args "...", split into the array NAME_extra
#     eval_kind KIND "heading"            a results table section (defaults: tts, vc, cont)
# Hooks: stage_<name> for a stage the template does not have (or to replace one: the defaults are tts_train,
# tts_inference, tts_evaluation, and for data/manifests egs/utils/data_stages.sh's shared_stage_data /
# shared_stage_manifests, which hooks may call with extra arguments), check_options (after the shared checks,
# before EXP_DIR is bound; every declared config is then validated against its schema before stage 0),
# train_data_overrides NAME (data.* overrides of every training run, e.g. a --data_format option's),
# results_notes (lines under the results title), summary_notes.
# --data_format shar (every family): training streams Lhotse Shar shards (local/shar.sh); a family whose items
# need per-item features sets shar_features="f0 ssl" (converted from EXP_DIR/features) in `recipe`, and
# shar_runs="synth" when only some of its training runs can stream.
set -euo pipefail

template_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
recipe_dir="$(cd "$(dirname "$0")" && pwd)"
. "$template_dir/../../utils/env.sh"
. "$repo_root/egs/utils/stage.sh"
. "$repo_root/egs/utils/corpus_setup.sh"
. "$template_dir/local/declare.sh"
. "$template_dir/local/stages.sh"

# ----------------------------------------------------------------------------------------------- declarations
corpus_recipe_options 0 0  # the last stage and synthetic speakers are set from the declarations below
family="" title="" model_dir="" job_style=speakers infer_kinds=tts requires_command=espeak-ng
stages="data
manifests
train
inference
evaluation"
if declare -F recipe >/dev/null; then
    recipe
else  # the template run directly: the family is the config's model_type
    title="the config's model" about="the TTS template run directly: the family is --config's model_type"
    recipe_config config "the family's training config (json5; its model_type names the family) [required]"
    recipe_option speakers auto "table|none|auto" "the train manifest's speaker table as model.n_speakers/data.speakers
(auto: when the family's config takes them)"
    recipe_option job_style speakers "STYLE" "job lists: speakers (named speakers), prompts (a voice prompt),
prompts_text (a prompt and its transcript; continuation jobs too)"
    recipe_option infer_kinds tts "\"KIND ...\"" "what the inference stage runs: tts, vc (speakers style), cont"
fi
recipe_option data_format files "files|shar" "training data: files = the manifests (and per-item features);
shar = Lhotse Shar shards of the train split (audio + shar_features), written once into EXP_DIR/shar and
streamed by every training run (data.format=shar)"
finish_declarations

. "$repo_root/egs/utils/parse_options.sh"
check_stage_range 0 "$last_stage"
resolve_configs
if [ -z "$family" ]; then
    [ -n "$config" ] || die "--config is required: the template trains the family its config names" \
        "(e.g. --config models/example/toy_tts/configs/mini.json5)"
    case "$speakers" in
        table | none | auto) ;; *) die "--speakers takes table, none or auto (got '$speakers')" ;; esac
    case "$job_style" in speakers | prompts | prompts_text) ;;
        *) die "--job_style takes speakers, prompts or prompts_text (got '$job_style')" ;; esac
    check_recipe_configs
    config_family
    title="$family"
fi
model_dir="${model_dir:-$family}"
setup_corpus_recipe "${family}_$dataset"
! declare -F check_options >/dev/null || check_options
check_recipe_configs  # a family's configs: after check_options, which may pick them
read -r -a forward_names <<<"$forward_args"
split_forward_args "${forward_names[@]}"
features="$exp_dir/features"

. "$repo_root/egs/utils/data_stages.sh"
. "$template_dir/local/shar.sh"
require_python_packages numpy soundfile json5 torch

log "$family: dataset=$dataset data_dir=${data_dir:-?} exp_dir=$exp_dir stages $stage..$stop_stage ngpu=$ngpu"
[ ${#config_overrides[@]} -eq 0 ] || log "config overrides for training: ${config_overrides[*]}"

for number in $(seq 0 "$last_stage"); do
    stage_name="$(stage_name_of "$number")"
    run_stage "$number" "$stage_name" "$(stage_function "$stage_name")"
done
print_summary
