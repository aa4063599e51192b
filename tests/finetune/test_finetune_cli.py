"""echelon-finetune end to end with tiny budgets: the converted joe voice, real recordings of the mini corpus
without transcripts plus a broken and a silent file, Whisper tiny.en. Checks what the command promises: the
skipped files listed, results with the base voice first, a voice echelon-infer loads, a Piper .onnx that
onnxruntime loads, a rerun refused, --resume, and too little speech as one line.

The quality of the result is measured by egs/tts/finetune (RESULTS.md), not here: a few steps move nothing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from bins.finetune import main
from models.tts.vits.finetune import VITSFinetuner
from models.tts.vits.posterior_distill import DistillSettings
from tests.helpers import MINI_CORPUS

FAST = ["--asr_model", "tiny.en", "--eval_sentences", "2", "--threads", "1", "--quiet"]


@pytest.fixture(scope="module")
def joe(tmp_path_factory):
    from models.tts.vits.piper import convert_piper, installed_voice

    out = tmp_path_factory.mktemp("joe") / "joe"
    convert_piper(installed_voice("joe"), out)
    return out


@pytest.fixture(scope="module")
def reader_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("reader")
    for wav in sorted((MINI_CORPUS / "ljspeech").glob("*.wav")):
        shutil.copy(wav, folder / wav.name)
    (folder / "broken.wav").write_bytes(b"RIFF....WAVEfmt not audio at all")
    sf.write(str(folder / "silent.flac"), np.zeros(22050 * 2, np.float32), 22050)
    return folder


@pytest.fixture(autouse=True)
def small_distillation(monkeypatch):
    monkeypatch.setattr(VITSFinetuner, "distill", DistillSettings(sentences=6, steps=4, batch_items=2))


@pytest.fixture(scope="module")
def finished(joe, reader_dir, tmp_path_factory):
    """One run: 2 steps, scored after each; its voice left unblended (the blend tests start from it)."""
    exp = tmp_path_factory.mktemp("run") / "exp"
    cache = tmp_path_factory.mktemp("cache")
    mp = pytest.MonkeyPatch()
    mp.setattr(VITSFinetuner, "distill", DistillSettings(sentences=6, steps=4, batch_items=2))
    # the mini corpus's LJSpeech reader is ~8.4 semitones above joe: a threshold of 5 makes the run pitch-matched
    # whatever the BLAS rounding does to the measured gap
    mp.setattr("finetune.results.PITCH_GAP_SEMITONES", 5.0)
    try:
        code = main(["--audio_dir", str(reader_dir), "--base_ckpt_dir", str(joe), "--exp_dir", str(exp),
                     "--max_steps", "2", "--eval_every", "1", "--cache_dir", str(cache), "--blend", "off", *FAST])
    finally:
        mp.undo()
    return code, exp, cache


def test_run_writes_voice_onnx_and_results(finished, joe):
    code, exp, cache = finished
    assert code == 0
    results = json.loads((exp / "results.json").read_text())
    assert results["data"]["utterances"] == 6 and results["data"]["transcripts"]["asr"] == 6
    skipped = {Path(s["item"]).name: s["reason"] for s in results["data"]["skipped"]}
    assert skipped.keys() == {"broken.wav", "silent.flac"}
    assert skipped["broken.wav"].startswith("not audio") and skipped["silent.flac"].startswith("silent")
    assert results["base"]["sim"] > 0 and [r["step"] for r in results["checkpoints"]] == [1, 2]
    assert results["notes"]["mixed precision"] == "no"  # float32 unless --set train.mixed_precision=bf16
    assert results["best_step"] in (1, 2)
    rows = [results["base"], results["reader"], *results["checkpoints"]]
    assert all(np.isfinite(r["buzz_db"]) for r in rows)  # at the decoder's frame rate, 22050 / 256 Hz
    assert results["reader"]["buzz_db"] < 6.0  # real recordings have no line there (1-4 dB)
    md = (exp / "results.md").read_text()
    assert "| buzz dB |" in md
    assert md.index("base voice") < md.index("checkpoint") < md.index("reader's recordings")
    assert "broken.wav" in md and (exp / "sim_wer_vs_cpu.png").stat().st_size > 1000
    from finetune.run import skipped_summary  # the run's last line names them too

    last = skipped_summary(results["data"]["skipped"], exp / "results.md")
    assert last.startswith("2 files or pieces skipped (") and "broken.wav" in last and "silent.flac" in last
    assert list(cache.glob("*/enc_q.safetensors"))  # the base voice's preparation is cached

    from finetune.results import pitch_gap
    from models.base.pipeline import load_pipeline

    # pitch-matched (the fixture): the voice plays faster, halfway to the reader's pitch
    ratio = results["notes"]["playback_ratio"]
    assert ratio == pytest.approx(2 ** (pitch_gap(results["base"], results["reader"]) / 24), abs=1e-4)
    rate = results["notes"]["voice_sample_rate"]
    assert abs(rate - 22050 * ratio) < 2  # the note's ratio is rounded to 4 decimals
    tts = load_pipeline(str(exp / "voice"))
    audio = tts.synthesize(["A short test."])[0]
    assert audio.sample_rate == rate and audio.waveform.size > rate * 0.3

    import onnxruntime

    voice = json.loads((exp / "voice.onnx.json").read_text())
    assert voice["phoneme_id_map"]["^"] and voice["audio"]["sample_rate"] == rate
    session = onnxruntime.InferenceSession(str(exp / "voice.onnx"), providers=["CPUExecutionProvider"])
    ids = np.array([[1, 0, 20, 0, 59, 0, 24, 0, 2]], dtype=np.int64)
    out = session.run(None, {"input": ids, "input_lengths": np.array([9], dtype=np.int64),
                             "scales": np.array([0.667, 1.0, 0.8], dtype=np.float32)})[0]
    assert out.size > 1000 and np.isfinite(out).all()


def test_rerun_refused_then_resumed(finished, joe, reader_dir, capsys):
    code, exp, cache = finished
    before = json.loads((exp / "results.json").read_text())["notes"]
    assert "playback_ratio" in before  # a matched run (the fixture)
    args = ["--audio_dir", str(reader_dir), "--base_ckpt_dir", str(joe), "--exp_dir", str(exp), "--cache_dir",
            str(cache), *FAST]
    assert main(args + ["--max_steps", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--resume" in err[0] and "--overwrite" in err[0]
    # --pitch_match off on a resumed, matched run: the run keeps the rate its checkpoints were trained at
    assert main(args + ["--max_steps", "3", "--eval_every", "1", "--resume", "--pitch_match", "off"]) == 0
    results = json.loads((exp / "results.json").read_text())
    assert [r["step"] for r in results["checkpoints"]] == [1, 2, 3]  # earlier rows kept, training went on
    from models.base.experiment import last_step

    assert last_step(exp / "train") == 3
    from models.base import checkpoint as ckpt

    resumed = ckpt.latest_valid_checkpoint(exp / "train" / "checkpoints")  # trained on at the matched rate
    assert ckpt.read_config(resumed)["data"]["sample_rate"] == before["voice_sample_rate"]
    assert json.loads((exp / "voice.onnx.json").read_text())["audio"]["sample_rate"] == \
        results["notes"].get("voice_sample_rate", 22050)


def test_too_little_speech_is_one_line(joe, tmp_path, capsys):
    folder = tmp_path / "few"
    folder.mkdir()
    shutil.copy(MINI_CORPUS / "ljspeech" / "LJ001-0002.wav", folder / "a.wav")
    code = main(["--audio_dir", str(folder), "--base_ckpt_dir", str(joe), "--exp_dir", str(tmp_path / "exp"),
                 "--max_steps", "2", "--cache_dir", str(tmp_path / "cache"), *FAST])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "usable speech" in err[0] and "20 s" in err[0]


@pytest.mark.parametrize("bad, message", [
    (["--audio_dir", "/nonexistent"], "--audio_dir /nonexistent: no such directory"),
    (["--cpu_minutes", "0"], "--cpu_minutes 0"),
    (["--cpu_minuts", "3"], "did you mean --cpu_minutes"),
    (["--max_wer", "150"], "--max_wer 150: a percentage between 0 and 100"),
    (["--set", "train.lr_decodr=1e-4"], "lr_decodr"),
    (["--set", "train.lr_decoder=fast"], "lr_decoder"),
    (["--blend", "1.5"], "--blend 1.5: auto, off, or the decoder's weight"),
    (["--blend", "half"], "--blend half"),
])
def test_wrong_input_is_one_line(joe, reader_dir, tmp_path, capsys, bad, message):
    args = {"--audio_dir": str(reader_dir), "--base_ckpt_dir": str(joe), "--exp_dir": str(tmp_path / "e")}
    for flag, value in zip(bad[::2], bad[1::2]):
        if flag in args:
            args[flag] = value
    argv = [x for kv in args.items() for x in kv]
    argv += [x for x in bad if x not in args and x not in args.values()] if bad[0] not in args else []
    try:
        code = main(argv + FAST)
    except SystemExit as stop:  # argparse's own exit (a misspelled option)
        code = stop.code
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and message in err[0] and "Traceback" not in err[0]
    assert not (tmp_path / "e").exists()


def test_best_checkpoint_rule_and_early_stop():
    """Highest SIM within the WER limit (--max_wer or base + 3 points), else the lowest WER; training stops once
    PATIENCE evaluations in a row are over the limit."""
    from finetune.results import PATIENCE, choose_best, over_limit_streak

    rows = [{"step": 100, "wer": 0.07, "sim": 0.63}, {"step": 200, "wer": 0.11, "sim": 0.66},
            {"step": 300, "wer": 0.16, "sim": 0.68}, {"step": 400, "wer": 0.22, "sim": 0.70}]
    assert choose_best(rows, base_wer=0.02)["step"] == 100  # default ceiling 10 %
    assert choose_best(rows, base_wer=0.02, ceiling=0.12)["step"] == 200
    assert choose_best(rows, base_wer=0.10)["step"] == 200  # a base of 10 % + 3 points: 13 %
    assert choose_best(rows[2:], base_wer=0.02)["step"] == 300  # none within: the lowest WER
    assert over_limit_streak(rows, base_wer=0.02) == PATIENCE
    assert over_limit_streak(rows, base_wer=0.02, ceiling=0.2) == 1


def test_best_checkpoint_prefers_a_voice_without_the_frame_rate_buzz():
    """Within the WER limit a checkpoint over 6 dB of buzz (or the base's + 2) is kept only when none is under;
    at every step the choice is the new row or the previous best (the voice already saved)."""
    from finetune.results import choose_best

    rows = [{"step": 100, "wer": 0.02, "sim": 0.60, "buzz_db": 3.8}, {"step": 200, "wer": 0.02, "sim": 0.73,
            "buzz_db": 5.3}, {"step": 300, "wer": 0.03, "sim": 0.78, "buzz_db": 6.2},
            {"step": 400, "wer": 0.02, "sim": 0.80, "buzz_db": 7.0}, {"step": 500, "wer": 0.20, "sim": 0.85,
            "buzz_db": 2.0}]  # fmt: skip
    assert choose_best(rows, base_wer=0.02, base_buzz=2.5)["step"] == 200
    assert choose_best(rows, base_wer=0.02, base_buzz=4.5)["step"] == 300  # a base at 4.5 dB: up to 6.5
    assert choose_best(rows[2:4], base_wer=0.02, base_buzz=2.5)["step"] == 400  # none quiet: the highest SIM
    assert choose_best([{k: v for k, v in r.items() if k != "buzz_db"} for r in rows], base_wer=0.02)["step"] == 400
    previous = None
    for n in range(1, len(rows) + 1):
        best = choose_best(rows[:n], base_wer=0.02, base_buzz=2.5)
        assert best["step"] in (rows[n - 1]["step"], previous)
        previous = best["step"]


def test_sim_reference_leaves_out_what_the_data_preparation_refuses(reader_dir, caplog):
    """The SIM reference (in-run with --sim_reference_dir, and score_voice.py) is the reader's usable recordings:
    the broken and the silent file of the same folder are left out and named in the log."""
    from finetune.run import reference_recordings

    with caplog.at_level("INFO", logger="echelon.finetune"):
        wavs = reference_recordings(reader_dir)
    assert len(wavs) == len(list((MINI_CORPUS / "ljspeech").glob("*.wav")))
    assert all(np.abs(wav).max() > 0.01 and rate == 22050 for wav, rate in wavs)
    said = " ".join(caplog.messages)
    assert "left out broken.wav (not audio)" in said and "left out silent.flac (silent" in said


def test_bfloat16_steps_are_a_setting(joe, tmp_path):
    """float32 by default (bf16 was measured faster per step but not better per reader: RESULTS.md)."""
    from models.base.finetune import FinetuneBudget

    finetuner = VITSFinetuner(joe, tmp_path)
    assert finetuner.config_for("", 1, FinetuneBudget()).train.mixed_precision in (None, "no")
    finetuner.settings = ["train.mixed_precision=bf16"]
    assert finetuner.config_for("", 1, FinetuneBudget()).train.mixed_precision == "bf16"


def test_pitch_far_from_the_base_voice_is_reported_and_warned(finished, tmp_path):
    """The base voice's and the reader's median F0 are measured once (a male voice against LJSpeech's female
    reader here) and reported; a gap of PITCH_GAP_SEMITONES or more is pitch-matched, or with --pitch_match off a
    warning in results.md and the log."""
    from evaluation.pitch import semitones
    from finetune.results import PITCH_GAP_SEMITONES, ResultsBook, pitch_warning

    _, exp, _ = finished
    results = json.loads((exp / "results.json").read_text())
    base_f0, reader_f0 = results["base"]["f0_hz"], results["reader"]["f0_hz"]
    gap = semitones(reader_f0, base_f0)
    assert 80.0 < base_f0 < 160.0 and 170.0 < reader_f0 < 300.0 and gap > 5.0  # 2 sentences: ~141 vs ~229 Hz
    assert all("f0_hz" not in row for row in results["checkpoints"])  # a buzzing voice misleads F0 trackers
    md, logged = (exp / "results.md").read_text(), (exp / "finetune.log").read_text()
    assert f"the base voice {base_f0:.0f} Hz ({gap:+.1f} semitones)" in md
    # --pitch_match auto (the default) met her halfway (the fixture's threshold is 5): no warning then
    assert "Pitch match: trained on the recordings played" in md and "playback_ratio" in results["notes"]
    assert "**Warning:** the reader speaks" not in md and "semitones above the base voice" not in logged

    base = results["base"]
    far = ResultsBook(tmp_path, base=base, reader={**results["reader"], "f0_hz": base_f0 * 2}).markdown()
    assert "**Warning:** the reader speaks 12.0 semitones above the base voice" in far
    near = {"f0_hz": base_f0 * 2 ** ((PITCH_GAP_SEMITONES - 0.1) / 12)}
    assert pitch_warning(base, near) is None
    assert "12.0 semitones below the base voice" in pitch_warning(base, {"f0_hz": base_f0 / 2})
    assert pitch_warning(base, {"wer": 0.0}) is None  # a book written before F0 was measured
    assert pitch_warning(base, {"f0_hz": base_f0 * 2}, ratio=1.41) is None  # matched: nothing to warn of


def test_playback_ratio_meets_a_far_reader_halfway():
    from finetune.results import PITCH_GAP_SEMITONES, playback_ratio

    assert playback_ratio(None) == 1.0 and playback_ratio(PITCH_GAP_SEMITONES - 0.1) == 1.0
    assert playback_ratio(12.0) == pytest.approx(2 ** 0.5) and playback_ratio(-12.0) == pytest.approx(2 ** -0.5)
    assert playback_ratio(PITCH_GAP_SEMITONES) == pytest.approx(2 ** (PITCH_GAP_SEMITONES / 24))


def test_playback_ratio_sets_the_voices_rate_and_its_training_data_rate(joe, tmp_path):
    """The fine-tuned voice's config declares the faster rate: training loads the recordings at it (the decoder
    counts samples, so it sees them slowed), and its speech is returned and saved at it."""
    from models.base.finetune import FinetuneBudget
    from models.base import checkpoint as ckpt

    finetuner = VITSFinetuner(joe, tmp_path)
    base_wav, base_rate = finetuner.speak(["Hello there."])[0]
    assert finetuner.set_playback_ratio(1.25) == finetuner.voice_rate == round(22050 * 1.25)
    assert finetuner.frame_rate_hz == pytest.approx(round(22050 * 1.25) / 256)  # the buzz lines move with it
    assert finetuner.config_for("", 1, FinetuneBudget()).data.sample_rate == finetuner.voice_rate
    assert finetuner.base_cfg.data.sample_rate == 22050  # the base voice itself is untouched
    wav, rate = finetuner.speak(["Hello there."])[0]
    assert base_rate == 22050 and rate == finetuner.voice_rate and np.array_equal(wav, base_wav)
    saved = finetuner.save_voice(tmp_path / "voice", 1.0)
    assert ckpt.read_config(ckpt.resolve_checkpoint_dir(saved))["data"]["sample_rate"] == finetuner.voice_rate
    with pytest.raises(ValueError, match="positive"):
        finetuner.set_playback_ratio(0.0)


def test_a_family_that_cannot_change_its_rate_trains_unmatched(tmp_path, caplog):
    """The base contract's default: a reader far above the base voice is not matched, the run says so and
    records no ratio (the run goes on at the base rate)."""
    from finetune.results import ResultsBook
    from finetune.run import match_pitch
    from models.base.finetune import VoiceFinetuner

    class FixedRate(VoiceFinetuner):
        sample_rate = 16000

    book = ResultsBook(tmp_path, base={"f0_hz": 110.0}, reader={"f0_hz": 220.0})  # 12 semitones apart
    with caplog.at_level("WARNING"):
        assert match_pitch(FixedRate(tmp_path, tmp_path), book) == 1.0
    assert "playback_ratio" not in book.notes and "voice_sample_rate" not in book.notes
    assert "cannot play at another rate" in caplog.text
    assert FixedRate(tmp_path, tmp_path).set_playback_ratio(1.0) == 16000


def test_blend_rule():
    """The first weight tried that is clean enough, within the WER limit and above the likeness floor; none
    when no weight is all three."""
    from finetune.blend import choose_blend, parse_blend

    rows = [{"weight": 0.8, "wer": 0.03, "dnsmos": 2.60, "sim": 0.72}, {"weight": 0.65, "wer": 0.12,
            "dnsmos": 2.90, "sim": 0.70}, {"weight": 0.5, "wer": 0.02, "dnsmos": 2.85, "sim": 0.66}]  # fmt: skip
    assert choose_blend(rows, target=2.5, wer_limit=0.1, sim_floor=0.6)["weight"] == 0.8
    assert choose_blend(rows, target=2.8, wer_limit=0.1, sim_floor=0.6)["weight"] == 0.5  # 0.65: over the WER limit
    assert choose_blend(rows, target=2.8, wer_limit=0.1, sim_floor=0.68) is None  # 0.5 gives back too much
    assert choose_blend(rows, target=3.0, wer_limit=0.2, sim_floor=0.0) is None  # none clean enough
    assert parse_blend("auto") is None and parse_blend("off") == 1.0 and parse_blend("0.7") == 0.7


class _ScriptedBlends:
    """A finetuner and scorer whose blends score what a measured run scored (RESULTS.md, "The decoder blend")."""

    def __init__(self, scores):
        self.scores, self.tried, self.weight, self.saved = scores, [], 1.0, None
        self.sentences, self.frame_rate_hz = ["One.", "Two."], None

    def blend_with_base(self, voice_dir, weight):
        self.weight = weight
        self.tried.append(weight)
        return True

    def speak(self, texts, tempo=1.0):
        return [(np.full(800, self.weight, np.float32), 16000) for _ in texts]

    def speak_and_score(self, speak, frame_rate_hz=None):
        from finetune.scoring import VoiceScores

        wavs = speak(self.sentences)
        sim, wer, dnsmos = self.scores[self.weight]
        return wavs, VoiceScores(wer, sim, dnsmos, 10.0, utterances=[{"weight": self.weight}])

    def save_voice(self, out_dir, tempo):
        self.saved = self.weight


@pytest.mark.parametrize("reader, kept, recordings, scores, tried, kept_weight", [
    # 367: 0.5 reaches the aim but gives back more than a quarter of the likeness: the first within the bar
    ("367", (0.751, 0.059, 1.91), 2.77, {0.8: (0.729, 0.035, 2.28), 0.65: (0.695, 0.023, 2.50),
                                        0.5: (0.659, 0.035, 2.77)}, [0.8, 0.65, 0.5, 0.65], 0.65),
    # 2609: 0.8 is within the bar, 0.65 within the aim
    ("2609", (0.794, 0.041, 2.63), 2.95, {0.8: (0.792, 0.029, 2.73), 0.65: (0.773, 0.023, 2.90)},
     [0.8, 0.65], 0.65),
    # p228: its haze does not yield before the likeness floor: left as trained
    ("p228", (0.756, 0.006, 2.86), 3.29, {0.8: (0.745, 0.012, 2.89), 0.65: (0.716, 0.018, 2.92),
                                         0.5: (0.680, 0.018, 3.02)}, [0.8, 0.65, 0.5], 1.0),
])
def test_blend_rule_on_measured_runs(tmp_path, reader, kept, recordings, scores, tried, kept_weight):
    """blend_voice on the scores three readers' blends measured (base SIM 0.444, 0.579, 0.486): the weights it
    tries, the one it keeps, and what it saves."""
    from finetune.blend import blend_voice
    from finetune.results import ResultsBook

    base_sim = {"367": 0.444, "2609": 0.579, "p228": 0.486}[reader]
    book = ResultsBook(tmp_path, base={"sim": base_sim, "wer": 0.023, "dnsmos": 3.29, "rate": 10.0},
                       reader={"sim": 0.95, "wer": 0.02, "dnsmos": recordings, "rate": 10.0},
                       checkpoints=[{"step": 400, "cpu_minutes": 20.0, "sim": kept[0], "wer": kept[1], "dnsmos": kept[2],
                                    "rate": 10.0}],
                       best_step=400)
    (tmp_path / "voice").mkdir()
    (tmp_path / "voice" / "kept.txt").write_text("the voice as trained")
    fake = _ScriptedBlends(scores)
    blend_voice(fake, fake, book, 1.0, tmp_path, None)
    assert fake.tried == tried and [r["weight"] for r in book.blends] == sorted(scores, reverse=True)[:len(book.blends)]
    assert book.blend["weight"] == kept_weight
    if kept_weight == 1.0:
        assert fake.saved is None and "no blend reached" in book.blend["why"]
    else:  # the kept blend's weights saved, its samples written and its sentences reported
        assert fake.saved == kept_weight and book.best_utterances == [{"weight": kept_weight}]
        assert (tmp_path / "voice_as_trained" / "kept.txt").read_text() == "the voice as trained"
        wav = sf.read(str(tmp_path / "samples" / "heldout_00.wav"))[0]
        assert np.allclose(wav, kept_weight, atol=1e-3)


def test_blend_moves_the_kept_decoder_towards_the_base_voice_once(finished, joe, reader_dir, tmp_path, caplog):
    """--blend W on a finished run: only the decoder of the kept voice moves (its effective weights halfway to
    the base voice's at 0.5), the blend is scored, saved, exported and reported; asked again, it does not
    compound."""
    import torch

    from models.base import checkpoint as ckpt
    from models.base.finetune import FinetuneError
    from models.tts.vits.model import VITS
    from modules.weight_norm import fold_weight_norm

    code, exp, cache = finished
    run = tmp_path / "exp"
    shutil.copytree(exp, run)
    kept_dir = ckpt.resolve_checkpoint_dir(run / "voice")
    kept_step = ckpt.read_meta(kept_dir)["finetune"]["step"]
    args = ["--audio_dir", str(reader_dir), "--base_ckpt_dir", str(joe), "--exp_dir", str(run), "--cache_dir",
            str(cache), "--max_steps", "1", "--resume", *FAST]

    def plain(path):
        model = VITS.from_config(_model_config(path))
        model.load_state_dict(ckpt.load_model_weights(path, "generator"))
        fold_weight_norm(model)
        return model.state_dict()

    kept = plain(kept_dir)
    assert main(args + ["--blend", "0.5"]) == 0
    results = json.loads((run / "results.json").read_text())
    assert results["blend"] == {"weight": 0.5, "step": kept_step}
    assert [r["weight"] for r in results["blends"]] == [0.5] and results["blends"][0]["sim"] > 0
    blended_dir = ckpt.resolve_checkpoint_dir(run / "voice")
    meta = ckpt.read_meta(blended_dir)["finetune"]
    assert meta["decoder_blend"] == 0.5 and meta["step"] == kept_step
    blended, base = plain(blended_dir), plain(ckpt.resolve_checkpoint_dir(joe))
    for key, value in blended.items():
        if key.startswith("dec."):
            torch.testing.assert_close(value, (kept[key] + base[key]) / 2, rtol=1e-4, atol=1e-5)
        else:  # text encoder, flow, posterior, and the duration predictor with the tempo folded in as before
            torch.testing.assert_close(value, kept[key], rtol=1e-5, atol=1e-6)
    assert "**voice**: best, decoder blended 0.50" in (run / "results.md").read_text()
    torch.testing.assert_close(plain(ckpt.resolve_checkpoint_dir(run / "voice_as_trained")), kept)  # not lost
    assert json.loads((run / "voice.onnx.json").read_text())["audio"]["sample_rate"] == \
        results["notes"]["voice_sample_rate"]  # re-exported from the blend, at the voice's rate

    with caplog.at_level("INFO"):
        assert main(args + ["--blend", "0.5"]) == 0
    assert "blended at 0.50 already" in caplog.text
    torch.testing.assert_close(plain(ckpt.resolve_checkpoint_dir(run / "voice")), blended)
    with pytest.raises(FinetuneError, match="already blended"):
        VITSFinetuner(joe, run).blend_with_base(run / "voice", 0.5)


def test_blend_auto_leaves_the_voice_when_no_weight_meets_the_rule(finished, joe, reader_dir, tmp_path,
                                                                    monkeypatch):
    """The rule on a voice no blend makes clean enough (the margin forced 10 over the recordings' DNSMOS, the
    likeness floor off): every weight scored, from the fine-tuned voice towards the base, and the voice left
    as trained, with the reason recorded."""
    from finetune.blend import BLEND_WEIGHTS
    from models.base import checkpoint as ckpt

    code, exp, cache = finished
    run = tmp_path / "exp"
    shutil.copytree(exp, run)
    before = (ckpt.resolve_checkpoint_dir(run / "voice") / "generator.safetensors").read_bytes()
    monkeypatch.setattr("finetune.blend.DNSMOS_MARGIN", -10.0)
    monkeypatch.setattr("finetune.blend.AIM_MARGIN", -10.0)
    monkeypatch.setattr("finetune.blend.LIKENESS_GIVEN_BACK", 1e9)
    assert main(["--audio_dir", str(reader_dir), "--base_ckpt_dir", str(joe), "--exp_dir", str(run), "--cache_dir",
                 str(cache), "--max_steps", "1", "--resume", *FAST]) == 0
    results = json.loads((run / "results.json").read_text())
    assert [r["weight"] for r in results["blends"]] == list(BLEND_WEIGHTS)
    assert results["blend"]["weight"] == 1.0 and "no blend reached DNSMOS" in results["blend"]["why"]
    voice = ckpt.resolve_checkpoint_dir(run / "voice")
    assert "decoder_blend" not in ckpt.read_meta(voice)["finetune"]
    assert (voice / "generator.safetensors").read_bytes() == before
    md = (run / "results.md").read_text()
    assert "**best**" in md and "Decoder blend: none, the voice is step" in md  # the checkpoint, as trained


def _model_config(ckpt_dir):
    from models.base import checkpoint as ckpt
    from models.tts.vits.config import VITSExperimentConfig
    from utils.config import validate

    return validate(ckpt.read_config(ckpt_dir), VITSExperimentConfig).model
