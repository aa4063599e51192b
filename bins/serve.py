"""Serve Echelon models over HTTP with a web demo: ``echelon-serve --ckpt_dir DIR | --pipeline SPEC | --model_type
NAME | --config serve.json5 [--host 127.0.0.1] [--port 8000] [--api_key KEY]``.

One model is given as ``echelon-infer`` takes it (``--pipeline``/``--ckpt_dir``, ``--model_type``, ``--component``,
``--backend``; an official ``.pth`` with ``--model_type``) and served under its directory name, file stem or model
type; ``--config`` names several models and the limits (``serving/config.py``). The API (``serving/README.md``):
``GET /health``, ``GET /v1/models``, ``POST /v1/audio/speech`` (OpenAI's shape, streaming),
``POST /v1/audio/conversion``, ``POST /v1/audio/upsample``, ``POST /v1/audio/process`` (models with a runner
only, e.g. a vocoder's copy synthesis); the demo at ``/ui``. Listens on 127.0.0.1 unless ``--host`` says otherwise.
SIGTERM: new requests get 503, those in flight finish, exit 0. Exit status: 0 after that drained shutdown; 2
with one line on stderr when it cannot start (a bad option or config; the address in use, checked before any
model is loaded); 3 when uvicorn cannot bind although that check passed (another process took the port
meanwhile); 1 when the server stopped without having started. Examples::

    echelon-serve --ckpt_dir exp/joe --port 8000
    curl -s localhost:8000/v1/audio/speech -H 'Content-Type: application/json' \\
        -d '{"model": "joe", "input": "Hello there."}' -o hello.wav
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import List, Optional

from bins.common import run_cli
from utils.cli import ArgumentParser, check_port_free
from utils.config import ConfigError

PROG = "echelon-serve"


def parse_args(argv: List[str]) -> argparse.Namespace:
    parser = ArgumentParser(prog=PROG, description=__doc__.split("\n")[0],
                            epilog=__doc__.split("\n", 2)[2], formatter_class=argparse.RawDescriptionHelpFormatter)
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--ckpt_dir", "--pipeline", dest="pipeline", metavar="SPEC_OR_DIR",
                      help="one model: an Echelon checkpoint/experiment dir or a pipeline spec (.json5), or an "
                           "official .pth with --model_type")
    what.add_argument("--config", help="serve.json5: several models and the limits")
    one = parser.add_argument_group("one model, as echelon-infer takes it")
    one.add_argument("--model_type", default="", help="registered pipeline or runner (default: from the spec / "
                                                      "checkpoint)")
    one.add_argument("--component", action="append", default=[], metavar="NAME=PATH",
                     help="set one component of the pipeline (e.g. synthesizer=exp/synth); repeatable")
    one.add_argument("--backend", choices=("torch", "onnxruntime"),
                     help="torch, or the exported ONNX graphs on onnxruntime (default: the pipeline's own choice)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--api_key", default=os.environ.get("ECHELON_API_KEY", ""),
                        help="require 'Authorization: Bearer KEY' (default: $ECHELON_API_KEY; empty: no key)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="serve config override, e.g. limits.workers=2 (repeatable)")
    parser.add_argument("--no_ui", action="store_true", help="do not mount the web demo")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--log_level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    return parser.parse_args(argv)


def main_unchecked(argv: List[str]) -> int:
    args = parse_args(argv)
    if args.config and (args.model_type or args.component or args.backend):
        raise ConfigError("--model_type, --component and --backend describe one model: with --config, set them in "
                          "serve.json5 (models.NAME.model_type, .components, .backend)")
    if not args.config and not args.pipeline and not args.model_type:
        raise ConfigError("give --ckpt_dir/--pipeline SPEC_OR_DIR, --model_type NAME or --config serve.json5")
    if not 0 < args.port < 65536:
        raise ConfigError(f"--port must be in 1..65535, got {args.port}")
    busy = check_port_free(args.host, args.port)  # before any model is loaded and warmed
    if busy is not None:
        raise ConfigError(f"cannot listen on --host {args.host} --port {args.port}: {busy}")
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from serving.app import create_app
    from models.base.pipeline import component_pairs
    from serving.config import read_serve_config, single_model_config
    from serving.gradio_env import quiet_gradio
    from serving.server import serve

    quiet_gradio()
    config = read_serve_config(args.config, args.overrides) if args.config else single_model_config(
        args.pipeline or "", args.overrides, args.model_type, args.backend or "", dict(component_pairs(args.component)))
    if args.api_key:
        config.api_key = args.api_key
    if args.no_ui:
        config.ui = False
    app = create_app(config, device=args.device)
    return serve(app, args.host, args.port, config.limits.drain_seconds, args.log_level)


def main(argv: Optional[List[str]] = None) -> int:
    return run_cli(PROG, main_unchecked, argv)


if __name__ == "__main__":
    sys.exit(main())
