"""egs/tts/glow_wavegan/run.sh: help, option errors and config defaults (the full run is end-to-end by hand:
stages 0-6 on the mini corpus on CPU; its pieces are tested in this folder)."""


from tests.helpers import REPO_ROOT, assert_recipe_cli

RECIPE = REPO_ROOT / "egs" / "tts" / "glow_wavegan"


def test_help_lists_both_stages_and_rejects_bad_options(tmp_path):
    assert_recipe_cli(RECIPE / "run.sh", tmp_path,
                      ("2 stage1", "3 latents", "4 stage2", "5 inference", "6 evaluation", "--vae_config", "--vae_args"),
                      {("--stage", "5", "--stop_stage", "2", "--exp_dir", str(tmp_path / "e")): "after --stop_stage"})


def test_recipe_configs_validate_and_agree_on_the_latent():
    from models.tts.glow_wavegan.config import GlowWaveGANExperimentConfig, WaveGANExperimentConfig
    from utils.config import load_config, validate

    for vae, glow in (("vae_tiny", "glow_tiny"), ("vae_ljspeech", "glow_ljspeech"),
                      ("vae_multispeaker", "glow_multispeaker")):
        stage1 = validate(load_config(RECIPE / "conf" / f"{vae}.json5"), WaveGANExperimentConfig)
        stage2 = validate(load_config(RECIPE / "conf" / f"{glow}.json5"), GlowWaveGANExperimentConfig)
        assert stage1.model.latent_channels == stage2.model.out_channels, (vae, glow)
