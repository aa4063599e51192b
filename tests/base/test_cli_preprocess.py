"""The generic preprocess CLI dispatches to registered preparers with seeded, deterministic splits."""

import json

from bins import preprocess
from tests.helpers import MINI_CORPUS


def read_ids(path):
    return [json.loads(line)["id"] for line in path.read_text().splitlines() if line.strip()]


def test_mini_corpus_manifests_are_deterministic(tmp_path, capsys):
    args = ["--dataset", "mini", "--data_dir", str(MINI_CORPUS), "--valid", "3", "--test", "3"]
    assert preprocess.main(args + ["--out_dir", str(tmp_path / "a")]) == 0
    assert preprocess.main(args + ["--out_dir", str(tmp_path / "b")]) == 0
    for split in ("train", "valid", "test"):
        assert read_ids(tmp_path / "a" / f"{split}.jsonl") == read_ids(tmp_path / "b" / f"{split}.jsonl")
    ids = {s: set(read_ids(tmp_path / "a" / f"{s}.jsonl")) for s in ("train", "valid", "test")}
    assert len(ids["valid"]) == 3 and len(ids["test"]) == 3
    assert not (ids["train"] & ids["valid"]) and not (ids["train"] & ids["test"])
    assert preprocess.main(args + ["--out_dir", str(tmp_path / "c"), "--seed", "7"]) == 0
    first = json.loads((tmp_path / "a" / "train.jsonl").read_text().splitlines()[0])
    assert {"id", "path", "speaker", "text", "duration", "sample_rate"} <= set(first)


def test_unknown_dataset_and_missing_corpus_fail_clearly(tmp_path, capsys):
    assert preprocess.main(["--dataset", "ljspech", "--data_dir", str(tmp_path), "--out_dir", str(tmp_path)]) == 2
    assert "did you mean 'ljspeech'" in capsys.readouterr().err
    assert preprocess.main(["--dataset", "ljspeech", "--data_dir", str(tmp_path / "nowhere"),
                            "--out_dir", str(tmp_path / "o")]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert "LJSpeech" in err or "ljspeech" in err
    assert "nowhere" in err


def test_preparer_specific_options_and_bad_options(tmp_path, capsys):
    args = ["--dataset", "mini", "--data_dir", str(MINI_CORPUS), "--out_dir", str(tmp_path / "o")]
    assert preprocess.main(args + ["valid=0", "test=2"]) == 0
    assert (tmp_path / "o" / "valid.jsonl").read_text().strip() == ""
    assert len(read_ids(tmp_path / "o" / "test.jsonl")) == 2
    assert preprocess.main(args + ["no_such_option=1"]) == 2
    assert "no_such_option" in capsys.readouterr().err
    assert preprocess.main(args + ["valid"]) == 2
    assert "key=value" in capsys.readouterr().err
