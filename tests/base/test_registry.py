"""The lazy registry: discovery without imports, clear errors, one lookup for every kind."""

import sys

import pytest

from utils import registry


def test_discovery_finds_example_without_importing():
    sys.modules.pop("models.example.toy_autoencoder.inference", None)
    index = registry.discover(refresh=True)
    assert index[("model", "toy_autoencoder")] == "models.example.toy_autoencoder.model"
    assert index[("trainer", "toy_autoencoder")] == "models.example.toy_autoencoder.trainer"
    assert "models.example.toy_autoencoder.inference" not in sys.modules
    pipeline = registry.get("inference", "toy_autoencoder")
    assert pipeline.__name__ == "ToyInference"


def test_unknown_names_suggest_close_match():
    with pytest.raises(registry.RegistryError, match="did you mean 'toy_autoencoder'"):
        registry.get("trainer", "toy_autoencodr")
    with pytest.raises(registry.RegistryError, match="unknown registry kind"):
        registry.get("vocoder_thing", "x")


def test_import_failure_is_reported_for_that_entry_only(tmp_path, monkeypatch):
    pkg = tmp_path / "echelon_broken_plugin"
    pkg.mkdir(parents=True)
    (pkg / "thing.py").write_text(
        "import a_dependency_that_does_not_exist\n"
        "from utils.registry import register\n"
        "@register(\"model\", \"broken_thing\")\nclass Broken: pass\n"
    )
    monkeypatch.setattr(registry, "_index", {("model", "broken_thing"): "echelon_broken_plugin.thing"})
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(registry.RegistryError, match="a_dependency_that_does_not_exist"):
        registry.get("model", "broken_thing")
    # other entries are unaffected
    monkeypatch.setattr(registry, "_index", None)
    assert registry.get("model", "toy_autoencoder").__name__ == "ToyWaveAutoencoder"


def test_duplicate_registration_rejected():
    @registry.register("metric", "_test_dup")
    def first():
        return 1

    with pytest.raises(registry.RegistryError, match="registered twice"):

        @registry.register("metric", "_test_dup")
        def second():
            return 2

    registry._registered.pop(("metric", "_test_dup"))


def test_every_discovered_entry_of_the_inference_side_really_registers():
    """What `echelon-infer --help` lists must load: a docstring example such as `@register("inference", ...)`
    in a base class must not be indexed as a real entry."""
    from utils.registry import discover, get

    for kind, name in sorted(discover(refresh=True)):
        if kind in ("inference", "pipeline", "trainer"):
            assert get(kind, name) is not None, (kind, name)
