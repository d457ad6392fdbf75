"""Scan readers and discovery: every supported input format as float32 ``(T, Y, X)`` frames."""

from .discover import ScanEntry, discover_scans, natural_key
from .hashing import sha256_file
from .readers import SUPPORTED_SUFFIXES
from .source import ScanSource, open_scan

__all__ = [
    "SUPPORTED_SUFFIXES",
    "ScanEntry",
    "ScanSource",
    "discover_scans",
    "natural_key",
    "open_scan",
    "sha256_file",
]
