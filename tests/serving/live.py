"""A real ``echelon-serve`` process on 127.0.0.1 (a free port) for the serving tests, and the tiny voice it
serves: a random 3-speaker VITS saved as an Echelon checkpoint (16 kHz, hop 32; it babbles, fast)."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import List, Optional

import httpx
import numpy as np
import soundfile as sf
import torch

from models.base import checkpoint as ckpt
from models.tts.vits.config import VITSConfig, VITSDataConfig, VITSExperimentConfig, VITSTrainConfig
from models.tts.vits.model import VITS
from tests.helpers import REPO_ROOT
from utils.config import to_dict

SPEAKERS = ["ann", "bob", "cid"]


def make_tiny_voice(folder: Path) -> Path:
    model = VITSConfig(inter_channels=8, hidden_channels=8, filter_channels=16, n_layers=1, resblock_kernel_sizes=[3],
                       resblock_dilation_sizes=[[1, 3, 5]], upsample_rates=[8, 4], upsample_initial_channel=16,
                       upsample_kernel_sizes=[16, 8], spec_channels=33, segment_frames=6, n_speakers=3,
                       gin_channels=8)
    data = VITSDataConfig(sample_rate=16000, filter_length=64, hop_length=32, win_length=64, speakers=SPEAKERS)
    cfg = VITSExperimentConfig(model=model, data=data, train=VITSTrainConfig(segment_samples=6 * 32))
    torch.manual_seed(0)
    ckpt.save_checkpoint(folder / "checkpoints", 1, models={"generator": VITS.from_config(cfg.model)},
                         config=to_dict(cfg))
    return folder


def make_tiny_vc(folder: Path) -> Path:
    """A tiny random HierSpeech++ synthesizer with a random tiny SSL model (the VC tests' own)."""
    from tests.models.hierspeechpp.test_vc_inference import SSL_DIM, SSL_LAYER, _tiny_model

    model = _tiny_model(seed=4)
    cfg = {"model_type": "hierspeechpp", "model": to_dict(model.config),
           "data": {"ssl": {"random_tiny_dim": SSL_DIM, "layer": SSL_LAYER}}}
    ckpt.save_checkpoint(folder / "checkpoints", 1, models={"generator": model}, config=cfg)
    return folder


VC_OVERRIDES = ["infer.f0_method=dio"]  # the tiny VC model's F0 (fast)
SR_OVERRIDES = ["infer.target_rate=24000"]


def write_demo_config(root: Path) -> Path:
    """``root/serve.json5`` serving the demo's models: the tiny voice, the tiny VC model, the bundled SpeechSR."""
    make_tiny_voice(root / "tiny")
    make_tiny_vc(root / "vc")
    (root / "serve.json5").write_text(json.dumps({"models": {
        "tiny": {"pipeline": "tiny"}, "vc": {"pipeline": "vc", "overrides": VC_OVERRIDES},
        "sr24": {"model_type": "speechsr", "overrides": SR_OVERRIDES}}}))
    return root / "serve.json5"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveServer:
    """``python -m bins.serve ARGS --port P`` in the background; :meth:`stop` sends SIGTERM and waits."""

    def __init__(self, args: List[str], log_path: Path, env: Optional[dict] = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1", **(env or {})}
        self.log_path = log_path
        self.log = open(log_path, "wb")
        level = [] if "--log_level" in args else ["--log_level", "warning"]
        self.proc = subprocess.Popen([sys.executable, "-m", "bins.serve", *args, "--port", str(self.port), *level],
                                     cwd=REPO_ROOT, env=environment,
                                     stdout=self.log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 120.0) -> "LiveServer":
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}: {self.output()}")
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        self.proc.kill()
        raise RuntimeError(f"server not ready in {timeout} s: {self.output()}")

    def output(self) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")[-3000:]

    def stop(self, timeout: float = 60.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


def read_wav(data: bytes) -> tuple[np.ndarray, int]:
    wav, rate = sf.read(io.BytesIO(data), dtype="float32")
    return wav, rate


def wav_bytes(wav: np.ndarray, rate: int, fmt: str = "WAV") -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, wav, rate, format=fmt)
    return buffer.getvalue()
