"""Benchmark TTS/VC systems side by side: ``echelon-benchmark BENCHMARK.json5 --out_dir exp/benchmark``.

The json5 file lists the systems (a registered pipeline with its checkpoints and inference settings, a
pipeline spec file, or an Echelon checkpoint directory), or says where to discover them (``discover.exp_root``:
every trained experiment there, ``evaluation/benchmark/discover.py``), and the protocol (test manifest, tasks,
seed); see ``evaluation/benchmark/config.py``. ``--system NAME=SPEC`` lists the systems on the command line.
Every system runs in its own process with the same thread count; one whose weights or dependencies are missing
is listed with the reason and skipped. Metrics go through ``evaluation/`` (the same code as ``echelon-evaluate``).
Writes ``report.md`` and ``report.html`` (opens from disk) into ``--out_dir`` and prints where they are.

An ``--out_dir`` that already holds a benchmark is refused unless ``--skip_existing`` (keep the audio it
generated, generate the rest: how an interrupted run is finished) or ``--overwrite`` (generate everything again).
Ctrl-C (SIGINT) or SIGTERM stop after the current item of the running system (no report; ``N written, M
failed, K not started: rerun with --skip_existing``). Progress: a bar on a terminal, a line every 30 s
otherwise (``--quiet``: none).

Exit status: 0 when the report was written, 1 when a system failed some items (the first five listed, all in
the report; ``--allow_failures``: 0) or no system could run (each reason listed), 2 for a bad
benchmark file, test set, device or output folder, 130/143 when stopped by SIGINT/SIGTERM.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import List, Optional

from bins.common import run_cli
from evaluation.benchmark.config import read_benchmark_config
from evaluation.benchmark.runner import NoSystemRan, run_benchmark
from utils.batch import add_rerun_arguments, exit_status, failure_lines, summary_lines
from utils.cli import ArgumentParser
from utils.config import ConfigError
from utils.devices import resolve_device
from utils.io import check_writable_dir


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="echelon-benchmark", description=__doc__.split("\n")[0])
    parser.add_argument("config", type=Path, help="benchmark file (json5)")
    parser.add_argument("--out_dir", "--out-dir", type=Path, required=True)
    parser.add_argument("--set", dest="overrides", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                        help="override a key of the benchmark file, e.g. protocol.max_items=5")
    parser.add_argument("--var", dest="variables", nargs="+", action="extend", default=[], metavar="NAME=VALUE",
                        help="value of a @NAME@ placeholder in the benchmark file, e.g. EXP_ROOT=exp")
    parser.add_argument("--system", dest="systems", action="append", default=[], metavar="NAME=SPEC",
                        help="a system to run instead of the file's list or discovery (repeatable)")
    parser.add_argument("--timeout", type=float, default=None, help="seconds allowed per system (default: none)")
    add_rerun_arguments(
        parser, overwrite="run again into an out_dir that holds a benchmark",
        skip_existing="keep the audio an earlier run of this out_dir generated and generate the rest",
        allow_failures="exit 0 even when a system failed some items (they are listed and in the report)")
    return parser


def main_unchecked(argv: Optional[List[str]] = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        variables = dict(v.split("=", 1) for v in args.variables if "=" in v)
        if len(variables) != len(args.variables):
            raise ConfigError(f"--var takes NAME=VALUE, got {[v for v in args.variables if '=' not in v]}")
        cfg = read_benchmark_config(args.config, args.overrides, variables, args.systems)
        cfg.device = resolve_device(cfg.device, "device")
        check_out_dir(args.out_dir, args.overwrite or args.skip_existing)
        paths = run_benchmark(cfg, args.out_dir, args.timeout, args.skip_existing, args.quiet)
    except NoSystemRan as err:
        print("echelon-benchmark: no system could run (no report written):", file=sys.stderr)
        print("\n".join(f"  {name}: {reason}" for name, reason in err.reasons.items()), file=sys.stderr)
        return 1
    except (ConfigError, FileNotFoundError, ValueError) as err:
        print(f"echelon-benchmark: {err}", file=sys.stderr)
        return 2
    if "stopped" in paths:
        print(summary_lines(paths["written"], paths["failed"], kept=paths["kept"],
                            not_started=paths["not_started"], stopped=True))
        return paths["stopped"]
    if paths["failed"]:
        print("\n".join(failure_lines(paths["failed"])))
    print(f"report: {paths['html']}\nmarkdown: {paths['markdown']}")
    return exit_status(len(paths["failed"]), args.allow_failures)


def check_out_dir(out_dir: Path, allowed: bool) -> None:
    """A file, an unwritable folder, or (without --overwrite/--skip_existing) an earlier benchmark: one line."""
    check_writable_dir(out_dir, "--out_dir", create=False)
    earlier = [name for name in ("report.md", "systems", "protocol") if (out_dir / name).exists()]
    if earlier and not allowed:
        raise ConfigError(f"--out_dir {out_dir} already holds a benchmark ({earlier[0]}): --skip_existing to keep "
                          "its generated audio and do the rest, --overwrite to run everything again")



def main(argv: Optional[List[str]] = None) -> int:
    return run_cli("echelon-benchmark", main_unchecked, argv)


if __name__ == "__main__":
    sys.exit(main())
