"""Image-similarity and temporal-stability metrics of docs/metrics.md (float64 accumulation)."""

from .image import (
    intra_frame_metrics,
    ncc,
    ncc_frames,
    psnr,
    psnr_frames,
    ssim,
    ssim_frames,
)
from .temporal import pair_ncc, pair_ncc_between, temporal_summary

__all__ = [
    "intra_frame_metrics",
    "ncc",
    "ncc_frames",
    "pair_ncc",
    "pair_ncc_between",
    "psnr",
    "psnr_frames",
    "ssim",
    "ssim_frames",
    "temporal_summary",
]
