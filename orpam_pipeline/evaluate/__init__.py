"""Honest evaluation of registration methods: papers' metrics, ground truth, leak check, artefact score.

``evaluate`` runs every method on the same ingested scans (or on the held-out simulated benchmark)
and returns one JSON-able record; ``write_outputs`` turns it into evaluation.json/.md/.png.
"""

from orpam_pipeline.lazy import lazy_exports

_WHERE = {
    "artefact_scores": "artefact",
    "comb_image": "artefact",
    "BENCHMARK_SCANS": "benchmark",
    "BenchmarkScan": "benchmark",
    "ensure_benchmark": "benchmark",
    "LEAK_FRAMES": "leak",
    "LEAK_THRESHOLD": "leak",
    "leak_check": "leak",
    "leak_scores": "leak",
    "unrelated_frames": "leak",
    "write_outputs": "outputs",
    "DEFAULT_METHODS": "run",
    "EvaluateOptions": "run",
    "evaluate": "run",
    "evaluate_scan": "run",
    "rank_agreement": "run",
    "find_truth": "scoring",
    "score_store": "scoring",
}
"""Where each name lives; imported on first use, so that the report's look for a truth beside the scan
(``evaluate.scoring``) does not import the simulator and scipy.stats with ``evaluate.run``."""

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

__getattr__ = lazy_exports(__name__, _WHERE)
