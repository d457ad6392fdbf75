"""Scan readers and discovery: every supported input format as float32 ``(T, Y, X)`` frames."""

from .discover import ScanEntry, discover_scans, natural_key
from .frame_reader import FrameReader, open_frames
from .hashing import sha256_file
from .readers import FORMATS, SUPPORTED_SUFFIXES, Format, register_format, supported_suffixes, unregister_format
from .source import ReadSpec, ScanSource, open_scan

__all__ = [
    "FORMATS",
    "SUPPORTED_SUFFIXES",
    "Format",
    "FrameReader",
    "ReadSpec",
    "ScanEntry",
    "ScanSource",
    "discover_scans",
    "natural_key",
    "open_frames",
    "open_scan",
    "register_format",
    "sha256_file",
    "supported_suffixes",
    "unregister_format",
]
