"""Benchmark TTS/VC systems side by side: ``echelon-benchmark BENCHMARK.json5 --out_dir exp/benchmark``.

The json5 file lists the systems (a registered pipeline with its checkpoints and inference settings, a
pipeline spec file, or an Echelon checkpoint directory), or says where to discover them (``discover.exp_root``:
every trained experiment there, ``evaluation/benchmark/discover.py``), and the protocol (test manifest, tasks,
seed); see ``evaluation/benchmark/config.py``. ``--system NAME=SPEC`` lists the systems on the command line. Every system runs in its own process with the same thread count; one
whose weights or dependencies are missing is listed with the reason and skipped. Metrics go through
``evaluation/`` (the same code as ``echelon-evaluate``). Writes ``report.md`` and ``report.html`` (opens from
disk) into ``--out_dir`` and prints where they are.

Exit status: 0 when the report was written, 2 for a bad benchmark file or test set.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import List, Optional

from bins.common import run_cli
from evaluation.benchmark.config import read_benchmark_config
from evaluation.benchmark.runner import run_benchmark
from utils.config import ConfigError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="echelon-benchmark", description=__doc__.split("\n")[0])
    parser.add_argument("config", type=Path, help="benchmark file (json5)")
    parser.add_argument("--out_dir", "--out-dir", type=Path, required=True)
    parser.add_argument("--set", dest="overrides", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                        help="override a key of the benchmark file, e.g. protocol.max_items=5")
    parser.add_argument("--var", dest="variables", nargs="+", action="extend", default=[], metavar="NAME=VALUE",
                        help="value of a @NAME@ placeholder in the benchmark file, e.g. EXP_ROOT=exp")
    parser.add_argument("--system", dest="systems", action="append", default=[], metavar="NAME=SPEC",
                        help="a system to run instead of the file's list or discovery (repeatable)")
    parser.add_argument("--timeout", type=float, default=None, help="seconds allowed per system (default: none)")
    return parser


def main_unchecked(argv: Optional[List[str]] = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        variables = dict(v.split("=", 1) for v in args.variables if "=" in v)
        if len(variables) != len(args.variables):
            raise ConfigError(f"--var takes NAME=VALUE, got {[v for v in args.variables if '=' not in v]}")
        cfg = read_benchmark_config(args.config, args.overrides, variables, args.systems)
        paths = run_benchmark(cfg, args.out_dir, args.timeout)
    except (ConfigError, FileNotFoundError, ValueError) as err:
        print(f"echelon-benchmark: {err}", file=sys.stderr)
        return 2
    print(f"report: {paths['html']}\nmarkdown: {paths['markdown']}")
    return 0



def main(argv: Optional[List[str]] = None) -> int:
    return run_cli("echelon-benchmark", main_unchecked, argv)


if __name__ == "__main__":
    sys.exit(main())
