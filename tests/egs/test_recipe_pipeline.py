"""The HierSpeech++ recipe end to end on a tiny corpus it has never seen (``--dataset custom``).

The corpus is a temporary folder of real speech: LibriSpeech test-other clips from ../shared/data/real when that
exists (3 speakers x 3 short clips, no transcripts), else VCTK clips of the bundled mini corpus. Training runs a
couple of steps only: this checks the stages' plumbing, markers and outputs, not model quality.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import soundfile as sf
import torch

from tests.egs.test_recipe import markers, run_recipe
from tests.helpers import MINI_CORPUS, REPO_ROOT

SHARED_LIBRISPEECH = REPO_ROOT.parent / "shared" / "data" / "real" / "librispeech_test_other"
# Keep CI fast: one generator step on the smallest windows the tiny config allows, logged.
SYNTH_ARGS = "data.max_frames=24 data.min_frames=16 model.segment_frames=8"
# --ngpu 0: the recipe picks the tiny configurations itself (conf_set auto without a GPU).
TINY_TRAIN = ["--train.max_steps", "1", "--train.log_every", "1", "--synth_args", SYNTH_ARGS]


def make_unseen_corpus(root: Path) -> tuple[Path, bool]:
    """Copy 3 speakers x 3 short clips into ``root/<speaker>/``; returns (root, has_transcripts)."""
    if SHARED_LIBRISPEECH.is_dir():
        clips = sorted(SHARED_LIBRISPEECH.glob("*.flac"))
        by_speaker: dict[str, list[Path]] = {}
        for clip in clips:
            by_speaker.setdefault(clip.name.split("-")[0], []).append(clip)
        for speaker in sorted(by_speaker)[:3]:
            shortest = sorted(by_speaker[speaker], key=lambda p: sf.info(str(p)).frames)[:3]
            (root / speaker).mkdir(parents=True)
            for clip in shortest:
                shutil.copy(clip, root / speaker / clip.name)
        return root, False
    for speaker in ("p225", "p226", "p227"):
        (root / speaker).mkdir(parents=True)
        for clip in sorted((MINI_CORPUS / "vctk" / speaker).glob("*.wav"))[:3]:
            shutil.copy(clip, root / speaker / clip.name)
    return root, False


@pytest.fixture(scope="module")
def custom_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("recipe_custom")
    corpus, _ = make_unseen_corpus(base / "corpus")
    exp = base / "exp"
    out = run_recipe("--dataset", "custom", "--data_dir", str(corpus), "--exp_dir", str(exp), "--stage", "0",
                     "--stop_stage", "7", "--nj", "1", "--ngpu", "0", "--ssl_model", "random", *TINY_TRAIN,
                     "--eval_args", "--no_plots", cwd=base, timeout=900)  # fmt: skip
    return corpus, exp, out


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_custom_corpus_manifests_and_features(custom_run):
    corpus, exp, out = custom_run
    assert out.returncode == 0, out.stderr[-3000:]
    assert markers(exp) == ["stage0.data.done", "stage1.manifests.done", "stage2.features.done", "stage3.synth.done",
                            "stage4.ttv.done", "stage5.speechsr.done", "stage6.inference.done",
                            "stage7.evaluation.done"]  # fmt: skip
    rows = [r for split in ("train", "valid", "test") for r in read_jsonl(exp / "manifests" / f"{split}.jsonl")]
    audio = sorted(p for p in corpus.rglob("*") if p.suffix in (".flac", ".wav"))
    assert sorted(Path(r["path"]).name for r in rows) == sorted(p.name for p in audio), "every clip, once"
    assert {r["speaker"] for r in rows} == {p.parent.name for p in audio}
    assert read_jsonl(exp / "manifests" / "test.jsonl"), "a seeded test split exists"
    assert "TINY configurations" in out.stderr, "a CPU-only run says it trains the tiny models"
    saved = json.loads(next((exp / "synth" / "checkpoints").glob("step_*/config.json")).read_text())
    assert saved["model"]["hidden_channels"] == 32, "conf/synth_tiny.json5 was used"
    ssl = json.loads((exp / "ssl" / "ssl.json").read_text())
    assert ssl["random"] is True and "RANDOMLY INITIALISED" in out.stderr, "the random SSL model must be announced"
    for row in rows:
        frames = int(row["duration"] * 16000) // 320
        feats = torch.load(exp / "features" / "ssl" / f"{row['id']}.pt", map_location="cpu", weights_only=True)
        assert feats.shape[0] == ssl["dim"] and abs(feats.shape[-1] - frames) <= 2
        f0 = torch.load(exp / "features" / "f0" / f"{row['id']}.pt", map_location="cpu", weights_only=True)
        assert abs(f0.shape[-1] - 4 * frames) <= 8 and bool((f0 > 0).any()), "real speech has voiced frames"
    ckpts = sorted((exp / "synth" / "checkpoints").glob("step_*"))
    assert ckpts and ckpts[-1].name == "step_00000001"
    log = read_jsonl(exp / "synth" / "train_log.jsonl")
    assert all(torch.isfinite(torch.tensor(r["mel"])) for r in log if "mel" in r)


def test_rerun_skips_finished_stages_and_resumes(custom_run):
    corpus, exp, first = custom_run
    assert first.returncode == 0, first.stderr[-3000:]
    stamp = (exp / ".done" / "stage2.features.done").read_text()
    again = run_recipe("--dataset", "custom", "--exp_dir", str(exp), "--stop_stage", "3", "--ngpu", "0",
                       cwd=exp.parent, timeout=300)  # fmt: skip
    assert again.returncode == 0, again.stderr[-3000:]
    for n, name in enumerate(("data", "manifests", "features", "synth")):
        assert f"stage {n} ({name}): already done" in again.stderr
    assert (exp / ".done" / "stage2.features.done").read_text() == stamp
    # Removing a marker reruns just that stage; training resumes from its checkpoint instead of restarting.
    (exp / ".done" / "stage3.synth.done").unlink()
    resumed = run_recipe("--dataset", "custom", "--exp_dir", str(exp), "--stage", "3", "--stop_stage", "3",
                         "--ngpu", "0", "--train.max_steps", "2", "--train.log_every", "1", "--synth_args", SYNTH_ARGS,
                         cwd=exp.parent, timeout=600)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming from" in resumed.stderr and "stage 3 (synth): done" in resumed.stderr
    assert "stage 2 (features)" not in resumed.stderr, "only the asked stage runs"
    steps = [r["step"] for r in read_jsonl(exp / "synth" / "train_log.jsonl") if r.get("split") == "train"]
    assert steps == [1, 2], f"training restarted instead of resuming: {steps}"


def test_no_transcripts_means_vc_only_then_sr_and_evaluation(custom_run):
    corpus, exp, out = custom_run
    assert out.returncode == 0, out.stderr[-3000:]
    # No transcripts: TTV and TTS are skipped, and the recipe says so.
    assert (exp / "ttv" / "SKIPPED").is_file() and "TTV is NOT trained" in out.stderr
    assert not (exp / "infer" / "tts").exists()
    # VC: one 16 kHz output per test utterance, named as the evaluation list says, as long as its source.
    jobs = read_jsonl(exp / "infer" / "lists" / "vc.jsonl")
    test_ids = {r["id"] for r in read_jsonl(exp / "manifests" / "test.jsonl")}
    assert {j["source_id"] for j in jobs} == test_ids
    for job in jobs:
        wav, rate = sf.read(exp / "infer" / "vc" / f"{job['id']}.wav")
        assert rate == 16000 and abs(len(wav) - int(sf.info(job["path"]).duration * 16000)) <= 320
        assert Path(job["prompt"]).parent.name != Path(job["path"]).parent.name, "VC targets another speaker"
    # 48 kHz: a real clip through the released SpeechSR, three times the 16 kHz length.
    (source,) = (exp / "infer" / "lists" / "shared" / "sr_inputs.txt").read_text().split()
    (upsampled,) = sorted((exp / "infer" / "sr48k").glob("*.wav"))
    info = sf.info(str(upsampled))
    assert info.samplerate == 48000
    assert abs(info.frames - 3 * int(round(sf.info(source).duration * 16000))) <= 3
    # Evaluation: the results table holds the VC row with speaker similarity and F0 columns.
    results = (exp / "eval" / "results.md").read_text()
    assert "hierspeechpp_vc" in results and "sim" in results.lower() and "f0" in results.lower()
    assert "randomly initialised" in results, "the table must say its SSL features were random"
    rows = (exp / "eval" / "vc" / "per_utterance.csv").read_text().splitlines()
    assert len(rows) == 1 + len(jobs)
    assert str(exp / "eval" / "results.md") in out.stdout, "the recipe ends by saying where the table is"
