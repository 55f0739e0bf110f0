"""Which copy of a notebook to publish: the executed one when it is current.

Standard library only: ``course.py`` imports it with whatever Python runs it, before the course's
environment exists.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class Source:
    """A notebook to publish: its source, and the executed copy used in its place when there is one."""

    source: Path
    path: Path
    executed: bool

    @property
    def stem(self) -> str:
        return self.source.stem


def pick_executed(source: Path, executed_dir: Path | None) -> Source:
    """``executed_dir/<name>`` when it exists and is not older than ``source``, else ``source`` itself."""
    source = Path(source)
    if not source.is_file():
        raise FileNotFoundError(f"notebook not found: {source}")
    if executed_dir is not None:
        candidate = Path(executed_dir) / source.name
        if candidate.is_file() and candidate.stat().st_mtime >= source.stat().st_mtime:
            return Source(source, candidate, True)
    return Source(source, source, False)
