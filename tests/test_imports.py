"""Importing the analysis and the report must not import torch: writing
Markdown or finding cliques should not pay torch's import time, nor need torch installed."""
import subprocess
import sys

import pytest

TORCH_FREE = ["dasgraph", "dasgraph.report", "dasgraph.analysis.graphs", "dasgraph.analysis.cliques",
              "dasgraph.analysis.trees", "dasgraph.analysis.combine",
              "dasgraph.analysis.seeds"]


@pytest.mark.parametrize("module", TORCH_FREE)
def test_module_imports_without_torch(module):
    # A fresh interpreter: this test process has imported torch long ago (conftest).
    code = (f"import sys, {module}\n"
            "heavy = sorted(m for m in ('torch', 'transformers', 'pyvene') if m in sys.modules)\n"
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"import {module} imported {out.stdout.strip()}"
