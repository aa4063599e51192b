"""bins.extract_features stopped by Ctrl-C: the running item finishes, the summary says what is left, exit 130,
and a rerun extracts only the rest (issue 23)."""

from __future__ import annotations

import os
import signal

from bins.extract_features import main as extract_cli
from processors.data import extract
from processors.features import feature_path
from tests.processors.test_feature_shards import manifest  # noqa: F401 (fixture: 6 real clips + 2 bad files)


def test_sigint_stops_after_the_item_and_a_rerun_finishes(manifest, tmp_path, monkeypatch, capsys):  # noqa: F811
    out = tmp_path / "features"
    real, calls, interrupted = extract._item_features, [], []

    def item_then_ctrl_c(entry, *args):
        result = real(entry, *args)
        calls.append(entry.id)
        if len(calls) == 4 and not interrupted:
            interrupted.append(True)
            os.kill(os.getpid(), signal.SIGINT)  # arrives while the fourth item is being finished
        return result

    monkeypatch.setattr(extract, "_item_features", item_then_ctrl_c)
    args = ["--manifest", str(manifest), "--out_dir", str(out), "--features", "mel", "--quiet"]
    assert extract_cli(args) == 130
    last = capsys.readouterr().out.strip().splitlines()[-1]
    done = [i for i in calls if feature_path(out, "mel", i).is_file()]
    failed = [i for i in calls if i.startswith("bad")]
    assert len(calls) == 4 and len(done) + len(failed) == 4 and done
    assert last == f"{len(done)} extracted, {len(failed)} failed, 4 not started: rerun with --skip_existing"

    calls.clear()
    assert extract_cli(args + ["--skip_existing"]) == 1  # the two unreadable files stay bad
    assert sorted(calls) == sorted({f"c{n}" for n in range(6)} - set(done) | {"bad_a", "bad_b"})  # not the done ones
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("bad_a: ") and lines[1].startswith("bad_b: ")  # first failures as id: reason
    assert all(feature_path(out, "mel", f"c{n}").is_file() for n in range(6))
