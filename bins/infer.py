"""Run any registered inference pipeline: ``echelon-infer --ckpt_dir DIR [pipeline options]``.

``model_type`` comes from the checkpoint's saved config (or ``--model_type`` for pipelines that load
official weights themselves); the pipeline adds its own options (see ``--ckpt_dir DIR --help``).
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import List, Optional

from models.base import checkpoint as ckpt
from utils.registry import RegistryError, get


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--ckpt_dir")
    pre.add_argument("--model_type")
    known, _ = pre.parse_known_args(argv)
    parser = argparse.ArgumentParser(prog="echelon-infer", description=__doc__.split("\n")[0])
    parser.add_argument("--ckpt_dir", help="Echelon checkpoint or experiment dir")
    parser.add_argument("--model_type", help="registered pipeline name (default: from the checkpoint)")
    parser.add_argument("--device", default="cpu")
    try:
        model_type = known.model_type
        if model_type is None:
            if known.ckpt_dir is None:
                parser.print_help()
                print("echelon-infer: give --ckpt_dir (or --model_type)", file=sys.stderr)
                return 2
            model_type = ckpt.read_config(ckpt.resolve_checkpoint_dir(known.ckpt_dir))["model_type"]
        pipeline_cls = get("inference", model_type)
    except (RegistryError, ckpt.CheckpointError, KeyError) as err:
        print(f"echelon-infer: {err}", file=sys.stderr)
        return 2
    pipeline_cls.add_arguments(parser)
    args = parser.parse_args(argv)
    pipeline = pipeline_cls.from_checkpoint(args.ckpt_dir, device=args.device)
    outputs = pipeline.run(args)
    print(f"wrote {len(outputs)} file(s)" + (f", e.g. {outputs[0]}" if outputs else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
