"""Every examples/plot_*.py runs with quick settings and writes its PNG files."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SCRIPTS = sorted(EXAMPLES.glob("plot_*.py"))


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS, ids=[s.stem for s in SCRIPTS])
def test_example_runs_and_writes_pngs(script):
    env = {**os.environ, "SKVAE_EXAMPLE_QUICK": "1", "MPLBACKEND": "Agg"}
    env["PYTHONPATH"] = os.pathsep.join(
        [str(EXAMPLES.parent), env.get("PYTHONPATH", "")]
    )
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    written = re.findall(r"^wrote (.+\.png)$", result.stdout, flags=re.MULTILINE)
    assert written, result.stdout
    for path in written:
        assert Path(path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
