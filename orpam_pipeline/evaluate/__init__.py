"""Honest evaluation of registration methods: papers' metrics, ground truth, leak check, artefact score.

``evaluate`` runs every method on the same ingested scans (or on the held-out simulated benchmark)
and returns one JSON-able record; ``write_outputs`` turns it into evaluation.json/.md/.png.
"""

from orpam_pipeline.evaluate.artefact import artefact_scores, comb_image
from orpam_pipeline.evaluate.benchmark import BENCHMARK_SCANS, BenchmarkScan, ensure_benchmark
from orpam_pipeline.evaluate.leak import LEAK_FRAMES, LEAK_THRESHOLD, leak_check, leak_scores, unrelated_frames
from orpam_pipeline.evaluate.outputs import write_outputs
from orpam_pipeline.evaluate.run import DEFAULT_METHODS, EvaluateOptions, evaluate, evaluate_scan, rank_agreement
from orpam_pipeline.evaluate.scoring import find_truth, score_store

__all__ = [
    "BENCHMARK_SCANS",
    "BenchmarkScan",
    "DEFAULT_METHODS",
    "EvaluateOptions",
    "LEAK_FRAMES",
    "LEAK_THRESHOLD",
    "artefact_scores",
    "comb_image",
    "ensure_benchmark",
    "evaluate",
    "evaluate_scan",
    "find_truth",
    "leak_check",
    "leak_scores",
    "rank_agreement",
    "score_store",
    "unrelated_frames",
    "write_outputs",
]
