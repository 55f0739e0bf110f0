"""Fetching files from the web: one helper with a timeout that never leaves a partial file.

Every download of the course (MNIST and CIFAR-10 through torchvision's URLs, VGG-19's ImageNet weights)
goes through :func:`download`.  ``$LECTURE_UTILS_OFFLINE=1`` (checked by :func:`offline`) turns every
download off; a failed one prints one line that says why, and the caller falls back (offline digits,
photo patches, random features).
"""
from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from .budget import offline

DOWNLOAD_TIMEOUT = 30.0     # seconds a connection may stall (connect, or between two reads) before it fails
CHECKSUMS = ("md5", "sha256")
_CHUNK = 1 << 20

# URLs whose download failed in this process: a notebook that loads the same data twice waits once.
_failed: set[str] = set()


def _check_arguments(urls, timeout, checksum) -> list[str]:
    urls = [urls] if isinstance(urls, str) else list(urls) if isinstance(urls, Sequence) else None
    if not urls or not all(isinstance(u, str) and "://" in u for u in urls):
        raise ValueError(f"url must be a URL string (or a list of mirror URLs), got {urls!r}")
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    if checksum is not None:
        if (not isinstance(checksum, tuple) or len(checksum) != 2 or checksum[0] not in CHECKSUMS
                or not isinstance(checksum[1], str) or not checksum[1]):
            raise ValueError(f"checksum must be (algorithm, hex digest or its prefix) with algorithm one of "
                             f"{CHECKSUMS}, got {checksum!r}")
    return urls


def _fetch(url: str, destination: Path, timeout: float, checksum: tuple[str, str] | None) -> None:
    """One attempt: stream ``url`` into a unique temporary file beside ``destination``, check it, move it."""
    fd, tmp = tempfile.mkstemp(dir=destination.parent, prefix=f".{destination.name}.", suffix=".part")
    try:
        digest = hashlib.new(checksum[0]) if checksum else None
        received = 0
        with os.fdopen(fd, "wb") as handle, urllib.request.urlopen(url, timeout=timeout) as response:
            expected = response.headers.get("Content-Length")
            while chunk := response.read(_CHUNK):
                handle.write(chunk)
                received += len(chunk)
                if digest is not None:
                    digest.update(chunk)
            if expected is not None and received != int(expected):
                raise http.client.IncompleteRead(b"", int(expected) - received)
            handle.flush()
            os.fsync(handle.fileno())
        if digest is not None and not digest.hexdigest().startswith(checksum[1].lower()):
            raise ValueError(f"{checksum[0]} {digest.hexdigest()[:16]}... does not match the expected "
                             f"{checksum[1][:16]}")
        os.replace(tmp, destination)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _reason(error: BaseException, timeout: float) -> str:
    if isinstance(error, TimeoutError) or isinstance(getattr(error, "reason", None), TimeoutError):
        return f"no data for {timeout:g} s (timed out)"
    if isinstance(error, http.client.IncompleteRead):
        return f"the connection closed {error.expected:,} bytes early"
    text = str(error).splitlines()[0] if str(error) else ""
    return f"{type(error).__name__}: {text}".rstrip(": ")


def download(url: str | Sequence[str], destination: str | Path, what: str | None = None,
             timeout: float = DOWNLOAD_TIMEOUT, checksum: tuple[str, str] | None = None) -> Path | None:
    """Download ``url`` to ``destination``; returns the path, or None when offline or when it failed.

    ``url`` may be a list of mirrors, tried in order.  ``timeout``: seconds a connection may stall
    (connect, or between two reads) before the attempt fails.  ``checksum``: ``("md5" | "sha256", hex
    digest)`` (a prefix of the digest is enough, as in torch hub's file names); a mismatch is a failure.
    The file is streamed into a uniquely named temporary file in the destination's folder and moved into
    place in one step, so an interrupted or failed download never leaves a partial file at
    ``destination`` and concurrent downloads of the same file do not collide.

    With ``$LECTURE_UTILS_OFFLINE=1`` nothing is tried.  A failure prints one line naming ``what``
    (default: the file's name) and why; a URL that failed is not tried again in this process.
    """
    urls = _check_arguments(url, timeout, checksum)
    destination = Path(destination)
    what = what or destination.name
    if offline():
        return None
    if all(u in _failed for u in urls):
        return None
    destination.parent.mkdir(parents=True, exist_ok=True)
    error: BaseException | None = None
    for candidate in urls:
        if candidate in _failed:
            continue
        try:
            _fetch(candidate, destination, float(timeout), checksum)
            return destination
        except (OSError, urllib.error.URLError, http.client.HTTPException, ValueError) as caught:
            _failed.add(candidate)
            error = caught
    print(f"[lecture_utils] {what} download failed ({_reason(error, timeout)})")
    return None
