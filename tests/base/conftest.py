import json

import pytest

from tests.helpers import MINI_CORPUS


@pytest.fixture
def toy_manifest(tmp_path):
    """JSONL manifest of 8 real VCTK clips from the bundled mini corpus."""
    clips = sorted((MINI_CORPUS / "vctk").glob("p22[56]/*.wav"))[:8]
    assert len(clips) == 8, "mini corpus is incomplete"
    path = tmp_path / "train.jsonl"
    with open(path, "w") as fh:
        for clip in clips:
            fh.write(json.dumps({"id": clip.stem, "path": str(clip), "speaker": clip.parent.name,
                                 "text": "", "duration": 0.0, "sample_rate": 16000}) + "\n")
    return path
