"""The version before blocks on demand, as a source tree to run beside this one.

``reference_tree()`` extracts ``REFERENCE_COMMIT`` (``git archive``) into a temporary
directory; benchmarks start ``bench.serve`` from there (``spawn_module(..., root=tree)``)
and report its figures as ``*_reference_*`` beside this version's, measured in the same run.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.common import REPO

REFERENCE_COMMIT = "5a8dbfb"  # blocks every interval, stored when the next one is decided


@contextmanager
def reference_tree(commit: str = REFERENCE_COMMIT) -> Iterator[Path]:
    """The source tree of ``commit`` in a temporary directory (removed afterwards)."""
    with tempfile.TemporaryDirectory(prefix="bench-reference-") as tmp:
        archive = subprocess.run(
            ["git", "archive", "--format=tar", commit],
            cwd=REPO,
            capture_output=True,
            check=True,
        )
        subprocess.run(["tar", "-x", "-C", tmp], input=archive.stdout, check=True)
        yield Path(tmp)
