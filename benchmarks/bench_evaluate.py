"""Held-out benchmark of every method: `orpam evaluate --benchmark OUT` as a script.

    .venv/bin/python benchmarks/bench_evaluate.py /tmp/orpam-eval [--methods none,copy-odd,phase,pcregnet]

Writes OUT/evaluation.{json,md,png} and prints the path of the markdown table.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from orpam_pipeline.evaluate import DEFAULT_METHODS, EvaluateOptions, evaluate, write_outputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--methods", default=",".join(DEFAULT_METHODS))
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--frames", type=int, default=None)
    args = parser.parse_args()
    options = EvaluateOptions(
        methods=tuple(args.methods.split(",")), max_frames=args.frames,
        settings={"checkpoint": args.checkpoint} if args.checkpoint else {},
    )  # fmt: skip
    paths = write_outputs(evaluate(None, args.out, options, benchmark=True), args.out)
    print(paths["md"])


if __name__ == "__main__":
    main()
