"""Plain JSON values from report and evaluation records (numpy scalars, NaN, tuples)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def json_safe(value: Any) -> Any:
    """A copy of ``value`` for ``json.dumps(..., allow_nan=False)``.

    Recursively, NaN and infinities become None, numpy scalars Python ones, dict keys str, tuples lists.
    """
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value
