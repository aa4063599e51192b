"""Generic code names no model family and no inference setting: ``models/base/*.py`` and ``serving/*.py`` reach
families through the registry and settings through the shared vocabulary (``models/base/infer_settings.json5``)
only. Comments and docstrings may name them."""

from __future__ import annotations

import io
import re
import tokenize

from tests.helpers import REPO_ROOT

FAMILY_OR_SETTING = re.compile(r"\b(vits|piper|hierspeech\w*|speechsr|valle|wavegrad\w*|glow\w*|noise_scale\w*|"
                               r"length_scale|denoise_ratio|pace)\b", re.IGNORECASE)


def code_names(path):
    """Family and setting names spelled in a file's code (comments and docstrings aside)."""
    found, previous = [], tokenize.NEWLINE
    for tok in tokenize.generate_tokens(io.StringIO(path.read_text()).readline):
        docstring = tok.type == tokenize.STRING and previous in (tokenize.NEWLINE, tokenize.NL, tokenize.INDENT,
                                                                  tokenize.DEDENT)
        if tok.type != tokenize.COMMENT and not docstring:
            found += [f"{path.name}:{tok.start[0]}: {m}" for m in FAMILY_OR_SETTING.findall(tok.string)]
        if tok.type not in (tokenize.NL, tokenize.COMMENT):
            previous = tok.type
    return found


def test_generic_code_names_no_family_and_no_setting():
    files = sorted((REPO_ROOT / "models/base").glob("*.py")) + sorted((REPO_ROOT / "serving").glob("*.py"))
    assert [hit for path in files for hit in code_names(path)] == []
