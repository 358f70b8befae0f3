"""Defaults shared by the CLI, the Python API, the server and the wire schema: one place on the
Python side (the frontend reads its own from ``labextension/schema/plugin.json``)."""

from __future__ import annotations

WORKSPACE_DIR = ".lenscope"
"""lenscope's folder under a workspace root: indexes, scans and comparison exports live below it."""
INDEXES_DIR = f"{WORKSPACE_DIR}/indexes"
SCANS_DIR = f"{WORKSPACE_DIR}/scans"
EXPORTS_DIR = f"{WORKSPACE_DIR}/compare"

TOP_K = 10
TOP_NEURONS = 10
TOP_FEATURES = 10
"""SAE features per token in an analysis that names an SAE."""
INDEX_K = 20
"""Top examples kept per neuron by an index build."""
INDEX_NAME = "workspace"
CLAMP = -6.0
"""Model B's log-prob floor in ``lp_A - max(lp_B, CLAMP)``."""
MIN_COUNT = 10
"""Smallest token group reported by comparisons and scans."""
COMPARE_ROWS = 300
"""Rows of a corpus comparison returned over HTTP (the exports hold every row)."""
COMPARE_GROUPS = 30
ATTENTION_K = 16
"""Strongest sources kept per token and head by ``POST attention``."""
MAX_ATTENTION_K = 1024
CARRIER_ROWS = 100
"""A comparison's "neurons that carry A's advantage" sum their direct parts over this many top rows."""
CARRIERS = 20
