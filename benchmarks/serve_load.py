"""Load test of ``echelon-serve`` on loopback: throughput, latency, first audio chunk, mix-ups, memory.

Starts ``echelon-serve --ckpt_dir VOICE`` on 127.0.0.1 (a free port; nothing is sent anywhere else) and sends
``--requests`` distinct speech requests (distinct texts and seeds) at each ``--concurrency``:

* throughput (requests/s), latency p50/p95/p99, errors (any non-200);
* mixed responses: the first (sequential) pass keeps every answer; each later pass must give every request the
  same audio: the same number of samples, each within ``MIX_TOLERANCE`` 16-bit steps (output is fixed by text
  and seed; a request that runs alone gets both cores and the voice's two-window graph, which equals the
  one-thread graph within 1e-4, i.e. a few steps; another request's audio, or two spliced, differs everywhere);
* time to the first audio chunk of a 300-character request, streamed vs. not (``--ttfa_runs`` each);
* server RSS (VmRSS of the server process) after 5 warm-up requests, after each pass (the issue's figure: after
  the first >= 500 one-shot requests, so ``--requests 200`` at 3 concurrencies) and after the long requests of
  the first-chunk test; the server's CPU time per pass;
* the CLI's batch throughput on the same texts (``echelon-infer --text_file``, its start-up subtracted: a
  1-text run is timed too) for the ratio server@8 / CLI.

Bounded: at most ``--requests`` per pass and ``--max_seconds`` in all (a pass that hits the limit stops and
says so). Usage::

    python benchmarks/serve_load.py --ckpt_dir exp/joe [--requests 200] [--concurrency 1 4 8]
    python benchmarks/serve_load.py --convert_joe             # converts the installed Piper joe voice first
"""

from __future__ import annotations

import argparse
import concurrent.futures
import io
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
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SENTENCES = [
    "The quick brown fox jumps over the lazy dog.", "She sells sea shells by the sea shore.",
    "A journey of a thousand miles begins with a single step.", "The rain in Spain stays mainly in the plain.",
    "Please call Stella and ask her to bring these things with her from the store.",
    "How much wood would a woodchuck chuck if a woodchuck could chuck wood?",
    "Every good boy deserves fudge, and every cow eats grass.", "The early bird catches the worm, they say.",
]
LONG_TEXT = ("The birch canoe slid on the smooth planks, and we glued the sheet to the dark blue background while "
             "it was still easy to tell the depth of a well; these days a chicken leg is a rare dish, rice is often "
             "served in round bowls, and the juice of lemons makes fine punch for the whole family tonight.")


WARMUP = 5


def request_text(i: int) -> str:
    return f"{SENTENCES[i % len(SENTENCES)]} This was request number {i}."


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def env() -> Dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}


class Server:
    def __init__(self, ckpt_dir: str, queue_size: int, settings: tuple = ()):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        sets = [arg for setting in (f"limits.queue_size={queue_size}", *settings) for arg in ("--set", setting)]
        self.proc = subprocess.Popen([sys.executable, "-m", "bins.serve", "--ckpt_dir", ckpt_dir, "--port",
                                      str(self.port), "--no_ui", "--log_level", "warning", *sets], cwd=ROOT, env=env())
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"serve_load: the server exited during start-up (exit {self.proc.returncode})")
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    self.name = httpx.get(self.url + "/v1/models").json()["data"][0]["id"]
                    return
            except httpx.HTTPError:
                time.sleep(0.3)
        self.proc.kill()
        raise SystemExit("serve_load: the server did not start within 120 s")

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(60)


MIX_TOLERANCE = 16  # 16-bit steps (~5e-4): far above the graphs' rounding, far below another utterance's audio


def same_audio(a: bytes, b: bytes) -> bool:
    """Two wav answers hold the same audio: as many samples, each within :data:`MIX_TOLERANCE` steps."""
    import soundfile as sf

    x, y = (sf.read(io.BytesIO(data), dtype="int16")[0].astype(np.int32) for data in (a, b))
    return x.shape == y.shape and int(np.abs(x - y).max(initial=0)) <= MIX_TOLERANCE


def one(client: httpx.Client, url: str, body: dict) -> tuple:
    start = time.perf_counter()
    try:
        response = client.post(url + "/v1/audio/speech", json=body)
        return time.perf_counter() - start, response.status_code, response.content
    except httpx.HTTPError as err:
        return time.perf_counter() - start, f"{type(err).__name__}", ""


def load_pass(server: Server, n: int, concurrency: int, deadline: float,
              reference: Optional[List[bytes]]) -> Dict[str, object]:
    # one-shot answers (a wav or pcm request without "stream" is streamed, as OpenAI's endpoint does)
    bodies = [{"model": server.name, "input": request_text(i), "seed": i, "stream": False} for i in range(n)]
    results: List[Optional[tuple]] = [None] * n
    cpu0 = cpu_seconds(server.proc.pid)
    start = time.perf_counter()
    with httpx.Client(timeout=120) as client, concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        futures = {}
        for i, body in enumerate(bodies):
            if time.monotonic() > deadline:
                break
            futures[pool.submit(one, client, server.url, body)] = i
        for future in concurrent.futures.as_completed(futures):
            results[futures[future]] = future.result()
    wall = time.perf_counter() - start
    done = [r for r in results if r is not None]
    latencies = np.array([r[0] for r in done if r[1] == 200])
    answers = [r[2] if r is not None and r[1] == 200 else b"" for r in results]
    mixed = sum(1 for i, a in enumerate(answers) if reference and a and reference[i] and not same_audio(a, reference[i]))
    return {"concurrency": concurrency, "sent": len(done), "errors": sum(1 for r in done if r[1] != 200),
            "mixed": mixed, "wall_s": wall, "throughput": len(latencies) / wall,
            **{f"p{q}": np.percentile(latencies, q) if latencies.size else float("nan") for q in (50, 95, 99)},
            "server_cpu_s": cpu_seconds(server.proc.pid) - cpu0,
            "answers": answers, "stopped_early": len(done) < n}


def first_chunk(server: Server, runs: int) -> Dict[str, float]:
    """Seconds to the first audio byte of a 300-character request, streamed and not (median of ``runs``)."""
    out: Dict[str, List[float]] = {"streamed": [], "one_shot": []}
    with httpx.Client(timeout=120) as client:
        for k in range(runs):
            for mode in ("streamed", "one_shot"):
                body = {"model": server.name, "input": LONG_TEXT, "seed": k, "stream": mode == "streamed",
                        "response_format": "pcm"}
                start = time.perf_counter()
                with client.stream("POST", server.url + "/v1/audio/speech", json=body) as response:
                    chunks = response.iter_raw()
                    first = next(chunks)
                    out[mode].append(time.perf_counter() - start)
                    assert first and response.status_code == 200
                    for _ in chunks:
                        pass
    return {mode: float(np.median(times)) for mode, times in out.items()}


def cli_throughput(ckpt_dir: str, n: int) -> Dict[str, float]:
    """``echelon-infer`` on the same texts: (wall(n) - wall(1)) / (n - 1) per text."""
    walls = {}
    with tempfile.TemporaryDirectory() as tmp:
        for count in (1, n):
            texts = Path(tmp) / f"texts_{count}.txt"
            texts.write_text("".join(f"req{i:04d}|{request_text(i)}\n" for i in range(count)))
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "bins.infer", "--ckpt_dir", ckpt_dir, "--text_file", str(texts),
                            "--output_dir", str(Path(tmp) / f"out_{count}")], cwd=ROOT, env=env(), check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            walls[count] = time.perf_counter() - start
    per_text = (walls[n] - walls[1]) / (n - 1)
    return {"wall_1": walls[1], "wall_n": walls[n], "throughput": 1.0 / per_text}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt_dir", help="voice to serve (e.g. the converted Piper joe voice)")
    parser.add_argument("--convert_joe", action="store_true", help="convert the installed joe voice into a temp dir")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--ttfa_runs", type=int, default=5)
    parser.add_argument("--max_seconds", type=float, default=1800.0)
    parser.add_argument("--skip_cli", action="store_true")
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                        help="a serve config override for the server, e.g. limits.workers=1 (repeatable)")
    args = parser.parse_args()
    if args.requests < 2:
        parser.error("--requests must be at least 2 (the CLI's throughput is taken between 1 and N texts)")
    deadline = time.monotonic() + args.max_seconds
    tmp = tempfile.TemporaryDirectory()
    ckpt_dir = args.ckpt_dir
    if args.convert_joe or not ckpt_dir:
        ckpt_dir = str(Path(tmp.name) / "joe")
        subprocess.run([sys.executable, "-m", "bins.convert_piper", "joe", ckpt_dir], cwd=ROOT, env=env(), check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = Server(ckpt_dir, queue_size=max(args.concurrency) + 4, settings=tuple(args.settings))
    try:
        with httpx.Client(timeout=120) as client:  # warm-up (first calls allocate caches), not counted
            for i in range(WARMUP):
                one(client, server.url, {"model": server.name, "input": request_text(10_000 + i), "seed": i})
        rss_before = rss_mb(server.proc.pid)
        print(f"server pid {server.proc.pid} on {server.url}, model {server.name!r}; RSS after {WARMUP} warm-up "
              f"requests: {rss_before:.0f} MB; cpus: {os.cpu_count()}, load average: {os.getloadavg()[0]:.1f}",
              flush=True)
        reference: Optional[List[bytes]] = None
        total = 0
        print("| concurrency | requests | errors | mixed | wall s | req/s | p50 s | p95 s | p99 s | server CPU s | "
              "RSS MB after (requests so far) |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        rows = []
        for conc in args.concurrency:
            row = load_pass(server, args.requests, conc, deadline, reference)
            reference = reference or row["answers"]
            total += row["sent"]
            rows.append(row)
            print(f"| {conc} | {row['sent']}{' (time limit)' if row['stopped_early'] else ''} | {row['errors']} | "
                  f"{row['mixed']} | {row['wall_s']:.1f} | {row['throughput']:.2f} | {row['p50']:.3f} | "
                  f"{row['p95']:.3f} | {row['p99']:.3f} | {row['server_cpu_s']:.1f} | {rss_mb(server.proc.pid):.0f} "
                  f"({total}) |", flush=True)
        rss_one_shot = rss_mb(server.proc.pid)
        ttfa = first_chunk(server, args.ttfa_runs)
        rss_after = rss_mb(server.proc.pid)
        print(f"first audio chunk of a {len(LONG_TEXT)}-character request (median of {args.ttfa_runs}): streamed "
              f"{ttfa['streamed']:.3f} s, not streamed {ttfa['one_shot']:.3f} s")
        few = "" if total >= 500 else "; fewer than the issue's 500"
        print(f"server RSS: {rss_before:.0f} MB after the warm-up, {rss_one_shot:.0f} MB after {total} one-shot "
              f"requests ({100 * (rss_one_shot / rss_before - 1):+.1f} %{few}), {rss_after:.0f} MB after "
              f"{2 * args.ttfa_runs} more {len(LONG_TEXT)}-character ones, half of them streamed "
              f"({100 * (rss_after / rss_before - 1):+.1f} % from the warm-up)")
        print(f"server exit status after SIGTERM: {server.stop()}")
    finally:
        if server.proc.poll() is None:
            server.proc.kill()
    if not args.skip_cli and time.monotonic() < deadline:
        cli = cli_throughput(ckpt_dir, args.requests)
        at8 = next((r for r in rows if r["concurrency"] == max(args.concurrency)), rows[-1])
        print(f"CLI echelon-infer: {cli['throughput']:.2f} texts/s (wall {cli['wall_n']:.1f} s for {args.requests}, "
              f"{cli['wall_1']:.1f} s for 1); server at concurrency {at8['concurrency']}: {at8['throughput']:.2f} req/s "
              f"= {at8['throughput'] / cli['throughput']:.2f}x the CLI")
    tmp.cleanup()


if __name__ == "__main__":
    main()
