"""Which skvae code a benchmark ran: a fingerprint of the sources, stamped on its report.

Shared by the benchmarks whose runs take long enough for the code to change under
them (an edit in another terminal); the report then says so instead of mixing two
versions' figures silently.
"""

import datetime
import hashlib
import platform
from pathlib import Path

import sklearn
import torch

import skvae


def source_fingerprint():
    """First 12 hex digits of the SHA-256 of skvae's ``*.py`` sources (which code ran)."""
    digest = hashlib.sha256()
    for path in sorted(Path(skvae.__file__).resolve().parent.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def stamp_report(report, fingerprint_at_start):
    """``report`` with the sources' fingerprint added to its "Produced by" line.

    Compares ``fingerprint_at_start`` with the sources now and says loudly when
    they differ.
    """
    end = source_fingerprint()
    note = f" skvae sources sha256 {fingerprint_at_start}" + (
        "." if end == fingerprint_at_start else
        f" at the start, {end} at the end: THE SKVAE CODE CHANGED DURING THE RUN.")
    return "\n".join(line + note if line.startswith("Produced by") else line
                     for line in report.split("\n"))


def produced_by(command, elapsed):
    """The "Produced by" line of a report: the command, the date, the run's minutes, versions."""
    return (f"Produced by `{command}` on {datetime.date.today().isoformat()} "
            f"({elapsed / 60:.1f} min wall): skvae {skvae.__version__}, scikit-learn "
            f"{sklearn.__version__}, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads), Python {platform.python_version()}.")
