"""Dataset manifests: which scans form a training dataset, their hashes and their train/val/test split.

A manifest is a TOML file (see ``data_manifests/README.md`` for the full description)::

    [dataset]
    name = "simulated"
    description = "12 simulated scans"
    pixel_size_um = 2.5            # optional
    scan_lines = "columns"         # or "rows": frames are transposed when read
    first_line = "forward"         # or "backward": swaps fixed and moving columns
    root = "../data/sim"           # relative to the manifest's folder unless absolute

    [[scans]]
    path = "scans/sim-0100.npy"    # relative to root unless absolute
    sha256 = "..."
    split = "train"                # "train" | "val" | "test"; the split is by scan
    frames = 64                    # optional: expected frame count, checked
    truth = "truth/sim-0100.zarr"  # optional: ground truth from `orpam simulate`

A scan path may be a file, a directory of 2-D frame files (one scan) or an ingested ``scan.zarr``
store. The sha256 of a file is that of its bytes; of a directory, the sha256 of the text made of one
``<relative path>\\t<sha256>\\n`` line per regular file below it (sorted, hidden files included), so
frame directories and zarr stores are covered by one rule.

Why the split is by scan: frames of one scan are strongly correlated in time, so putting frames of
one scan in both train and val would leak and make validation look better than it is.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from orpam_pipeline.errors import OrpamError
from orpam_pipeline.io import discover_scans, open_scan, sha256_file
from orpam_pipeline.store.files import atomic_write

SPLITS = ("train", "val", "test")
SCAN_LINES = ("columns", "rows")
FIRST_LINES = ("forward", "backward")
FORMAT_VERSION = 1


@dataclass(frozen=True)
class ManifestScan:
    """One scan of a dataset; ``path`` and ``truth`` are as written in the file (``resolved_*`` are absolute)."""

    name: str
    path: str
    sha256: str
    split: str
    resolved_path: Path
    frames: int | None = None
    truth: str | None = None
    resolved_truth: Path | None = None


@dataclass(frozen=True)
class Manifest:
    """A parsed manifest: dataset facts, the root folder, and the scans with their split."""

    name: str
    root: str
    resolved_root: Path
    scans: tuple[ManifestScan, ...]
    description: str = ""
    pixel_size_um: float | None = None
    scan_lines: str = "columns"
    first_line: str = "forward"
    source: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def split(self, which: str) -> list[ManifestScan]:
        """The scans of one split, in manifest order."""
        if which not in SPLITS:
            raise OrpamError(f"unknown split {which!r} (expected one of {', '.join(SPLITS)})")
        return [s for s in self.scans if s.split == which]


def _fail(source: Path | str, message: str) -> OrpamError:
    """A one-line manifest error naming the file."""
    return OrpamError(f"{source}: {message}")


def _resolve(base: Path, value: str) -> Path:
    """``value`` made absolute against ``base`` (``..`` collapsed, symlinks followed)."""
    p = Path(os.path.expanduser(value))
    return (p if p.is_absolute() else base / p).resolve()


def _inside(path: Path, root: Path) -> bool:
    """Whether ``path`` lies at or below ``root`` (both resolved)."""
    try:
        path.relative_to(root)
        return True
    except ValueError:
        return False


def _get(table: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str, source: Path,
         required: bool = True, default: Any = None) -> Any:
    """A typed value from a TOML table, or a one-line error."""
    if key not in table:
        if required:
            raise _fail(source, f"{where}: missing key {key!r}")
        return default
    value = table[key]
    if (isinstance(value, bool) and kind is not bool) or not isinstance(value, kind):
        raise _fail(source, f"{where}: {key} has the wrong type ({type(value).__name__})")
    return value


def load_manifest(path: Path | str, allow_outside_root: bool = False) -> Manifest:
    """Parse and validate a manifest; scan and truth paths outside ``root`` are refused unless allowed.

    Only the file is read here (no scan is opened or hashed; see :func:`check_manifest`).
    """
    source = Path(path)
    try:
        data = tomllib.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise _fail(source, "no such manifest") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise _fail(source, f"cannot read manifest ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise _fail(source, f"invalid TOML: {exc}") from None
    ds = data.get("dataset")
    if not isinstance(ds, dict):
        raise _fail(source, "missing [dataset] table")
    name = _get(ds, "name", str, "[dataset]", source)
    description = _get(ds, "description", str, "[dataset]", source, required=False, default="")
    pixel = _get(ds, "pixel_size_um", (int, float), "[dataset]", source, required=False)
    if pixel is not None and not (math.isfinite(pixel) and pixel > 0):
        raise _fail(source, f"[dataset]: pixel_size_um must be positive, not {pixel}")
    scan_lines = _get(ds, "scan_lines", str, "[dataset]", source, required=False, default="columns")
    first_line = _get(ds, "first_line", str, "[dataset]", source, required=False, default="forward")
    if scan_lines not in SCAN_LINES:
        raise _fail(source, f"[dataset]: scan_lines must be one of {', '.join(SCAN_LINES)}, not {scan_lines!r}")
    if first_line not in FIRST_LINES:
        raise _fail(source, f"[dataset]: first_line must be one of {', '.join(FIRST_LINES)}, not {first_line!r}")
    root = _get(ds, "root", str, "[dataset]", source, required=False, default=".")
    resolved_root = _resolve(source.resolve().parent, root)
    known = {"name", "description", "pixel_size_um", "scan_lines", "first_line", "root", "format_version"}
    extra = {k: v for k, v in ds.items() if k not in known}

    raw_scans = data.get("scans", [])
    if not isinstance(raw_scans, list) or not raw_scans:
        raise _fail(source, "no [[scans]] entries")
    scans: list[ManifestScan] = []
    names: set[str] = set()
    paths: set[Path] = set()
    for i, entry in enumerate(raw_scans):
        where = f"scans[{i}]"
        if not isinstance(entry, dict):
            raise _fail(source, f"{where}: not a table")
        rel = _get(entry, "path", str, where, source)
        sha = _get(entry, "sha256", str, where, source).lower()
        split = _get(entry, "split", str, where, source)
        frames = _get(entry, "frames", int, where, source, required=False)
        truth = _get(entry, "truth", str, where, source, required=False)
        if split not in SPLITS:
            raise _fail(source, f"{where}: split must be one of {', '.join(SPLITS)}, not {split!r}")
        if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
            raise _fail(source, f"{where}: sha256 must be 64 hex digits")
        if frames is not None and frames < 1:
            raise _fail(source, f"{where}: frames must be at least 1, not {frames}")
        resolved = _resolve(resolved_root, rel)
        if not allow_outside_root and not _inside(resolved, resolved_root):
            raise _fail(source, f"{where}: path {rel!r} resolves outside the dataset root {resolved_root}")
        resolved_truth = None
        if truth is not None:
            resolved_truth = _resolve(resolved_root, truth)
            if not allow_outside_root and not _inside(resolved_truth, resolved_root):
                raise _fail(source, f"{where}: truth {truth!r} resolves outside the dataset root {resolved_root}")
        scan_name = _get(entry, "name", str, where, source, required=False) or _scan_name(rel)
        if scan_name in names:
            raise _fail(source, f"{where}: scan name {scan_name!r} appears twice")
        if resolved in paths:
            raise _fail(source, f"{where}: path {rel!r} appears twice (a scan belongs to exactly one split)")
        names.add(scan_name)
        paths.add(resolved)
        scans.append(
            ManifestScan(
                name=scan_name, path=rel, sha256=sha, split=split, resolved_path=resolved,
                frames=frames, truth=truth, resolved_truth=resolved_truth,
            )
        )
    return Manifest(
        name=name, root=root, resolved_root=resolved_root, scans=tuple(scans), description=description,
        pixel_size_um=float(pixel) if pixel is not None else None, scan_lines=scan_lines,
        first_line=first_line, source=source, extra=extra,
    )


def _scan_name(rel: str) -> str:
    """Default scan name: the last path component without suffix (``.zarr`` stores: the parent folder)."""
    p = Path(rel)
    if p.name == "scan.zarr" and p.parent.name:
        return p.parent.name
    return p.stem if p.suffix else p.name


def hash_path(path: Path) -> str:
    """sha256 of a file's bytes, or of a directory's sorted ``<relpath>\\t<sha256>`` listing."""
    path = Path(path)
    if path.is_file():
        return sha256_file(path)
    if not path.is_dir():
        raise OrpamError(f"{path}: no such file or directory")
    lines = []
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames.sort()
        for f in sorted(filenames):
            full = Path(dirpath) / f
            if full.is_file():
                lines.append(f"{full.relative_to(path).as_posix()}\t{sha256_file(full)}\n")
    lines.sort()
    return hashlib.sha256("".join(lines).encode("utf-8")).hexdigest()


def _canonical(manifest: Manifest) -> dict[str, Any]:
    """What defines the data of a manifest, independent of where the dataset lives on disk."""
    return {
        "format_version": FORMAT_VERSION,
        "scan_lines": manifest.scan_lines,
        "first_line": manifest.first_line,
        "pixel_size_um": manifest.pixel_size_um,
        "scans": [
            {"name": s.name, "path": Path(s.path).as_posix(), "sha256": s.sha256, "split": s.split,
             "frames": s.frames, "truth": None if s.truth is None else Path(s.truth).as_posix()}
            for s in manifest.scans
        ],
    }


def manifest_hash(manifest: Manifest) -> str:
    """sha256 of the canonical JSON of the manifest's data-defining fields.

    Included: scan names, paths (as written), hashes, splits, frame counts, truth paths, scan_lines,
    first_line and pixel size. Excluded: name, description and the root's absolute location, so a
    dataset can be moved or re-described without invalidating a training run.
    """
    text = json.dumps(_canonical(manifest), sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def check_manifest(manifest: Manifest, verify_hashes: bool = True) -> list[str]:
    """Problems with the files behind a manifest (empty list = all good).

    Reports missing scans, sha256 mismatches, frame-count mismatches, unreadable headers, missing
    truth stores and truth shapes that do not match the scan, and empty train split.
    """
    problems: list[str] = []
    if not manifest.split("train"):
        problems.append("no scan in the train split")
    for s in manifest.scans:
        if not s.resolved_path.exists():
            problems.append(f"{s.name}: missing {s.resolved_path}")
            continue
        if verify_hashes:
            digest = hash_path(s.resolved_path)
            if digest != s.sha256:
                problems.append(f"{s.name}: sha256 mismatch for {s.resolved_path} (manifest {s.sha256[:12]}…, file {digest[:12]}…)")
        try:
            from orpam_pipeline.io.frame_reader import open_frames

            with open_frames(s.resolved_path, manifest.scan_lines) as fr:
                shape = fr.shape
        except OrpamError as exc:
            problems.append(f"{s.name}: cannot open: {exc}")
            continue
        if s.frames is not None and shape[0] != s.frames:
            problems.append(f"{s.name}: has {shape[0]} frames, manifest says {s.frames}")
        if s.resolved_truth is not None:
            problems.extend(_check_truth(s, shape))
    return problems


def _check_truth(scan: ManifestScan, shape: tuple[int, int, int]) -> list[str]:
    """Problems with a scan's truth store: missing, no ``even_true``, or a shape that does not fit."""
    import zarr

    assert scan.resolved_truth is not None
    if not (scan.resolved_truth / "zarr.json").exists():
        return [f"{scan.name}: missing truth store {scan.resolved_truth}"]
    try:
        group = zarr.open_group(scan.resolved_truth, mode="r")
        even_true = group["even_true"]
    except Exception as exc:  # zarr raises several types for damaged or foreign stores
        return [f"{scan.name}: truth store {scan.resolved_truth} has no readable even_true ({type(exc).__name__})"]
    t, y, x = shape
    if tuple(even_true.shape) != (t, y, x // 2):
        return [f"{scan.name}: truth even_true has shape {tuple(even_true.shape)}, expected {(t, y, x // 2)}"]
    return []


def assign_splits(names: list[str], val_fraction: float, test_fraction: float, seed: int) -> dict[str, str]:
    """Deterministic split of scan names: shuffle the sorted names with ``seed``; test first, then val.

    Counts are ``round(n * fraction)``, at least one when the fraction is positive and enough scans
    remain, and at least one scan always stays in train.
    """
    for label, f in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= f < 1.0:
            raise OrpamError(f"{label} must be in [0, 1), not {f}")
    if val_fraction + test_fraction >= 1.0:
        raise OrpamError("val_fraction + test_fraction must be below 1 (some scans must train)")
    ordered = sorted(names)
    n = len(ordered)
    order = np.random.default_rng(seed).permutation(n)

    def count(fraction: float, left: int) -> int:
        k = int(round(n * fraction))
        if fraction > 0 and k == 0:
            k = 1
        return max(0, min(k, left - 1))

    n_test = count(test_fraction, n)
    n_val = count(val_fraction, n - n_test)
    splits = {}
    for rank, i in enumerate(order):
        splits[ordered[i]] = "test" if rank < n_test else "val" if rank < n_test + n_val else "train"
    return splits


def _relative(path: Path, base: Path) -> str:
    """``path`` relative to ``base`` when inside it (posix form), else absolute."""
    try:
        return path.relative_to(base).as_posix()
    except ValueError:
        return path.as_posix()


def create_manifest(
    src_dir: Path | str,
    out_path: Path | str,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    seed: int = 0,
    name: str | None = None,
    description: str = "",
    scan_lines: str = "columns",
    first_line: str = "forward",
    pixel_size_um: float | None = None,
    overwrite: bool = False,
    split_from_dirs: bool = False,
) -> Manifest:
    """Discover the scans under ``src_dir``, hash them, split them by scan and write a manifest.

    ``root`` is written relative to the manifest's folder. A sibling ``truth/<scan>.zarr`` (the
    layout of ``orpam simulate``: ``DIR/scans/<scan>.npy`` beside ``DIR/truth/<scan>.zarr``) is
    attached as the scan's ``truth``; the root then becomes the common parent so truth stays inside.
    ``split_from_dirs=True`` keeps a published split instead: the first folder below ``src_dir``
    (``train``, ``val`` or ``test``) names each scan's split.
    """
    src = Path(src_dir).resolve()
    out = Path(out_path)
    if out.exists() and not overwrite:
        raise OrpamError(f"{out}: already exists (pass overwrite to replace it)")
    if scan_lines not in SCAN_LINES or first_line not in FIRST_LINES:
        raise OrpamError(f"scan_lines must be columns|rows and first_line forward|backward, not {scan_lines!r}/{first_line!r}")
    entries = discover_scans(src)
    found: list[tuple[str, Path, Path | None]] = []
    for e in entries:
        scan_path = e.paths[0] if len(e.paths) == 1 else e.paths[0].parent
        truth = None
        for candidate in (scan_path.parent.parent / "truth" / f"{e.name}.zarr",
                          scan_path.parent.parent / "truth" / f"{scan_path.stem}.zarr"):
            if (candidate / "zarr.json").exists():
                truth = candidate
                break
        found.append((e.name, scan_path, truth))
    root = src if src.is_dir() else src.parent
    for _, _, truth in found:
        if truth is not None and not _inside(truth.resolve(), root):
            root = src.parent
    if split_from_dirs:
        splits = {}
        for scan_name, scan_path, _ in found:
            parts = scan_path.resolve().relative_to(src).parts if _inside(scan_path.resolve(), src) else ()
            top = parts[0] if len(parts) > 1 else ""
            if top not in SPLITS:
                raise OrpamError(f"{scan_path}: not below a train/, val/ or test/ folder of {src}")
            splits[scan_name] = top
    else:
        splits = assign_splits([n for n, _, _ in found], val_fraction, test_fraction, seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    out_dir = out.resolve().parent
    root_text = os.path.relpath(root, out_dir) if os.path.splitdrive(str(root))[0] == os.path.splitdrive(str(out_dir))[0] else str(root)
    scans = []
    for scan_name, scan_path, truth in found:
        with open_scan(scan_path) as source:
            n_frames = source.shape[0]
        rel = _relative(scan_path.resolve(), root)
        scans.append(
            ManifestScan(
                name=scan_name, path=rel, sha256=hash_path(scan_path), split=splits[scan_name],
                resolved_path=scan_path.resolve(), frames=n_frames,
                truth=None if truth is None else _relative(truth.resolve(), root),
                resolved_truth=None if truth is None else truth.resolve(),
            )
        )
    manifest = Manifest(
        name=name or src.name, root=Path(root_text).as_posix(), resolved_root=root, scans=tuple(scans),
        description=description, pixel_size_um=pixel_size_um, scan_lines=scan_lines, first_line=first_line,
    )
    write_manifest(manifest, out)
    return replace(manifest, source=out)


def _toml_value(value: Any) -> str:
    """A TOML literal for a str, int, float or bool (JSON string escapes are valid TOML)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise OrpamError(f"cannot write non-finite number {value} to a manifest")
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    raise OrpamError(f"cannot write a {type(value).__name__} to a manifest")


def manifest_text(manifest: Manifest, header: str = "") -> str:
    """The TOML text of a manifest (round-trips through :func:`load_manifest`)."""
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    lines += ["# Dataset manifest (format: data_manifests/README.md).", "", "[dataset]"]
    ds: dict[str, Any] = {"format_version": FORMAT_VERSION, "name": manifest.name, "description": manifest.description}
    if manifest.pixel_size_um is not None:
        ds["pixel_size_um"] = float(manifest.pixel_size_um)
    ds.update(scan_lines=manifest.scan_lines, first_line=manifest.first_line, root=manifest.root)
    for k, v in {**ds, **manifest.extra}.items():
        lines.append(f"{k} = {_toml_value(v)}")
    for s in manifest.scans:
        lines += ["", "[[scans]]", f"name = {_toml_value(s.name)}", f"path = {_toml_value(s.path)}",
                  f"sha256 = {_toml_value(s.sha256)}", f"split = {_toml_value(s.split)}"]
        if s.frames is not None:
            lines.append(f"frames = {s.frames}")
        if s.truth is not None:
            lines.append(f"truth = {_toml_value(s.truth)}")
    return "\n".join(lines) + "\n"


def write_manifest(manifest: Manifest, path: Path | str, header: str = "") -> None:
    """Write the manifest as TOML (atomically: temporary file, then rename)."""
    path = Path(path)
    atomic_write(path, manifest_text(manifest, header))
