"""egs/TEMPLATE/tts: the template every TTS recipe is made of — its generic speaker table, its job lists (both job
styles), the help and stage lists it builds from a family's declarations, and the template run directly."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO_ROOT

LOCAL = REPO_ROOT / "egs" / "TEMPLATE" / "tts" / "local"
TEMPLATE = REPO_ROOT / "egs" / "TEMPLATE" / "tts" / "run.sh"
ENV = {**os.environ, "ECHELON_PYTHON": sys.executable, "PYTHONPATH": str(REPO_ROOT)}  # as egs/utils/env.sh sets


def _write_jsonl(path: Path, rows) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def _read(path: Path) -> list:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _script(name: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(LOCAL / name), *args], capture_output=True, text=True, env=ENV)


def test_speaker_table(tmp_path):
    manifest = tmp_path / "train.jsonl"
    _write_jsonl(manifest, [{"id": "a", "path": "a.wav", "speaker": "s2", "text": "hi"},
                            {"id": "b", "path": "b.wav", "speaker": "s1", "text": "yes"},
                            {"id": "c", "path": "c.wav", "speaker": "s3", "text": ""}])
    out = _script("speakers.py", "--manifest", str(manifest))
    assert out.stdout.splitlines() == ["model.n_speakers=2", 'data.speakers=["s1", "s2"]']
    _write_jsonl(manifest, [{"id": "a", "path": "a.wav", "speaker": "s", "text": "hi"}])
    assert _script("speakers.py", "--manifest", str(manifest)).stdout.splitlines() == [
        "model.n_speakers=0", "data.speakers=[]"]
    _write_jsonl(manifest, [{"id": "a", "path": "a.wav", "speaker": "s", "text": ""}])
    out = _script("speakers.py", "--manifest", str(manifest))
    assert out.returncode != 0 and "no transcribed utterances" in out.stderr and "Traceback" not in out.stderr


def _lists_and_manifests(tmp_path: Path) -> tuple[Path, Path]:
    lists, manifests = tmp_path / "shared", tmp_path / "manifests"
    lists.mkdir()
    manifests.mkdir()
    _write_jsonl(lists / "tts.jsonl", [
        {"id": "u1", "text": "Hello.", "speaker": "s1", "path": "/r/u1.wav", "prompt": "/r/t2.wav", "prompt_id": "t2"},
        {"id": "u2", "text": "Hi.", "speaker": "x", "path": "/r/u2.wav", "prompt": "/r/t9.wav", "prompt_id": "t9"}])
    _write_jsonl(lists / "vc.jsonl", [
        {"id": "u1_to_v", "path": "/r/u1.wav", "source_id": "u1", "speaker": "s2", "prompt": "/p.wav"},
        {"id": "u1_to_w", "path": "/r/u1.wav", "source_id": "u1", "speaker": "x", "prompt": "/p.wav"}])
    _write_jsonl(manifests / "train.jsonl", [{"id": "t1", "path": "/r/t1.wav", "speaker": "s1", "text": "One."},
                                             {"id": "t2", "path": "/r/t2.wav", "speaker": "s2", "text": "Two."}])
    _write_jsonl(manifests / "valid.jsonl", [])
    _write_jsonl(manifests / "test.jsonl", [
        {"id": "u1", "path": "/r/u1.wav", "speaker": "s1", "text": "Hello.", "duration": 5.0},
        {"id": "u2", "path": "u2.wav", "speaker": "x", "text": "Hi.", "duration": 1.0}])
    return lists, manifests


def _make_jobs(tmp_path: Path, style: str, *more: str) -> tuple[Path, Path]:
    """make_jobs.py in one job style over the lists above: (its output folder, the shared lists)."""
    lists, manifests = _lists_and_manifests(tmp_path)
    out_dir = tmp_path / "jobs"
    out = _script("make_jobs.py", "--lists", str(lists), "--manifest_dir", str(manifests), "--out_dir", str(out_dir),
                  "--style", style, *more)  # fmt: skip
    assert out.returncode == 0, out.stderr
    return out_dir, lists


def test_speaker_jobs_keep_trained_speakers_and_pair_with_evaluation(tmp_path):
    out_dir, _ = _make_jobs(tmp_path, "speakers")
    assert _read(out_dir / "tts_jobs.jsonl") == [{"id": "u1", "text": "Hello.", "speaker": "s1"}]
    assert _read(out_dir / "vc_jobs.jsonl") == [{"id": "u1_to_v", "path": "/r/u1.wav", "source_speaker": "s1",
                                                 "speaker": "s2"}]  # fmt: skip
    assert [r["id"] for r in _read(out_dir / "tts.jsonl")] == ["u1"] and [r["id"] for r in _read(out_dir / "vc.jsonl")] == ["u1_to_v"]
    assert len((out_dir / "skipped.tsv").read_text().splitlines()) == 2


def test_single_voice_jobs_have_no_speaker_and_no_vc(tmp_path):
    """A family trained without a speaker table (toy_tts) speaks every test text in its one voice."""
    out_dir, _ = _make_jobs(tmp_path, "speakers", "--single_voice")
    assert _read(out_dir / "tts_jobs.jsonl") == [{"id": "u1", "text": "Hello."}, {"id": "u2", "text": "Hi."}]
    assert _read(out_dir / "vc_jobs.jsonl") == [] and _read(out_dir / "vc.jsonl") == []


def test_prompt_jobs_keep_every_item_and_pair_vc_by_files(tmp_path):
    out_dir, lists = _make_jobs(tmp_path, "prompts")
    assert _read(out_dir / "tts_jobs.jsonl") == [{"id": "u1", "text": "Hello.", "prompt": "/r/t2.wav"},
                                                 {"id": "u2", "text": "Hi.", "prompt": "/r/t9.wav"}]  # fmt: skip
    assert _read(out_dir / "vc.jsonl") == _read(lists / "vc.jsonl")
    assert (out_dir / "vc_pairs.tsv").read_text() == "/r/u1.wav\t/p.wav\n/r/u1.wav\t/p.wav\n"
    assert not (out_dir / "cont_jobs.jsonl").exists()


def test_prompt_text_jobs_carry_the_prompt_transcript_and_continuations(tmp_path):
    out_dir, _ = _make_jobs(tmp_path, "prompts_text")
    assert _read(out_dir / "tts_jobs.jsonl") == [{"id": "u1", "text": "Hello.", "prompt": "/r/t2.wav",
                                                  "prompt_text": "Two."}]  # fmt: skip
    assert _read(out_dir / "cont_jobs.jsonl") == [{"id": "u1_cont", "text": "Hello.", "prompt": "/r/u1.wav",
                                                   "continuation": True}]  # fmt: skip
    assert [r["id"] for r in _read(out_dir / "cont.jsonl")] == ["u1_cont"]
    skipped = (out_dir / "skipped.tsv").read_text()
    assert "u2\tprompt t9 has no transcript" in skipped and "u2\tno transcript or too short" in skipped


def _run(script: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(script), *args], cwd=cwd, env=ENV, capture_output=True, text=True, timeout=120)


def test_every_tts_recipe_is_the_template(tmp_path):
    """Each family's run.sh declares and sources the template: no stage runner, option parser or help of its own."""
    for script in sorted((REPO_ROOT / "egs" / "tts").glob("*/run.sh")):
        text = script.read_text()
        assert "TEMPLATE/tts/run.sh" in text and "run_stage" not in text and "parse_options" not in text, script
        assert "egs/tts/" not in text.replace(f"egs/tts/{script.parent.name}/", ""), f"{script} uses another recipe"
        helped = _run(script, "--help", cwd=tmp_path)
        assert helped.returncode == 0 and "--stage N --stop_stage M" in helped.stdout, helped.stderr
        stages = re.findall(r"^  (\d+) +([a-z_0-9]+)", helped.stdout, flags=re.MULTILINE)
        if stages[0][1] == "data":  # a corpus recipe: the template's data .. evaluation stages
            assert [s[1] for s in stages[:2]] == ["data", "manifests"] and stages[-1][1] == "evaluation", script
        else:  # a recipe without a corpus (egs/tts/finetune) declares its own stages and refuses a corpus
            refused = _run(script, "--dataset", "ljspeech", "--exp_dir", str(tmp_path / "e"), cwd=tmp_path)
            assert refused.returncode != 0 and "does not apply" in refused.stderr, (script, refused.stderr)


def test_template_run_directly_needs_a_config_and_checks_it(tmp_path):
    out = _run(TEMPLATE, "--exp_dir", str(tmp_path / "e"), cwd=tmp_path)
    assert out.returncode != 0 and "--config is required" in out.stderr
    config = tmp_path / "broken.json5"
    config.write_text("{train: {max_steps: 1}}")
    out = _run(TEMPLATE, "--config", str(config), "--exp_dir", str(tmp_path / "e"), cwd=tmp_path)
    assert out.returncode != 0 and "not a training config of a registered family" in out.stderr
    assert not (tmp_path / "e").exists(), "a rejected call must not create or bind the exp dir"


@pytest.mark.parametrize("family, config, table", [("vits", "egs/tts/vits/conf/vits_tiny.json5", "table"),
                                                   ("toy_tts", "models/example/toy_tts/configs/mini.json5", "none")])
def test_template_run_directly_names_the_experiment_after_the_model_type(tmp_path, family, config, table):
    """A family with no shell of its own (toy_tts) is its config: model_type names it, its config says whether
    it takes the speaker table."""
    assert _script("family.py", str(REPO_ROOT / config)).stdout == f"{family}\t{table}\n"
    exp_root = tmp_path / "exp"
    out = subprocess.run(["bash", str(TEMPLATE), "--config", str(REPO_ROOT / config), "--stop_stage", "0",
                          "--synthetic_speakers", "0"], cwd=tmp_path, env=ENV, capture_output=True, text=True,
                         timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert (exp_root / f"{family}_mini" / "recipe_settings").read_text().startswith("dataset=mini\n")
    assert (exp_root / f"{family}_mini" / ".done" / "stage0.data.done").is_file()
