"""The one download helper: a timeout, a checksum, an atomic write, one line on failure, and the offline switch.

Every test serves its own files: from a local folder (file:// URLs) or from an HTTP server on localhost that the
test runs in a thread, so that slow and broken servers can be staged.
"""
import hashlib
import http.server
import threading
import time

import pytest

from lecture_utils import downloads

PAYLOAD = bytes(range(256)) * 4000           # about 1 MB: several reads of the helper's chunk size


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):                                                  # noqa: N802 - the http.server API
        if self.path == "/file":
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            self.wfile.write(PAYLOAD)
        elif self.path == "/stall":                                    # headers, half the data, then silence
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            self.wfile.write(PAYLOAD[:len(PAYLOAD) // 2])
            self.wfile.flush()
            time.sleep(3)
        elif self.path == "/cut":                                      # the connection drops mid-file
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            self.wfile.write(PAYLOAD[:1000])
            self.close_connection = True
        else:
            self.send_error(404)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(autouse=True)
def online(monkeypatch):
    monkeypatch.setenv("LECTURE_UTILS_OFFLINE", "0")
    monkeypatch.setattr(downloads, "_failed", set())


def test_download_writes_the_file_and_checks_its_checksum(server, tmp_path, capsys):
    target = tmp_path / "sub" / "file.bin"
    sha = hashlib.sha256(PAYLOAD).hexdigest()
    assert downloads.download(f"{server}/file", target, checksum=("sha256", sha[:8])) == target
    assert target.read_bytes() == PAYLOAD
    md5 = hashlib.md5(PAYLOAD).hexdigest()
    again = tmp_path / "again.bin"
    assert downloads.download(f"{server}/file", again, checksum=("md5", md5)) == again
    assert capsys.readouterr().out == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["again.bin", "sub"]


def test_a_stalled_server_times_out_and_leaves_no_partial_file(server, tmp_path, capsys):
    target = tmp_path / "file.bin"
    start = time.monotonic()
    assert downloads.download(f"{server}/stall", target, what="the test file", timeout=0.5) is None
    assert time.monotonic() - start < 2.5                                  # it did not wait for the server
    out = capsys.readouterr().out.strip().splitlines()
    assert out == ["[lecture_utils] the test file download failed (no data for 0.5 s (timed out))"]
    assert list(tmp_path.iterdir()) == []


def test_failures_leave_the_old_file_alone_and_print_one_line(server, tmp_path, capsys):
    target = tmp_path / "file.bin"
    target.write_bytes(b"the old file")
    assert downloads.download(f"{server}/cut", target, timeout=5) is None
    assert "closed" in capsys.readouterr().out
    assert downloads.download(f"{server}/file", target, checksum=("sha256", "00" * 32)) is None
    assert "sha256" in capsys.readouterr().out
    assert downloads.download(f"{server}/missing", target) is None
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "HTTPError" in out[0] and "404" in out[0]
    assert target.read_bytes() == b"the old file" and [p.name for p in tmp_path.iterdir()] == ["file.bin"]


def test_mirrors_are_tried_in_order_and_a_failed_url_is_not_tried_again(server, tmp_path, capsys):
    target = tmp_path / "file.bin"
    dead = (tmp_path / "nowhere").as_uri()
    assert downloads.download([dead, f"{server}/file"], target) == target
    assert capsys.readouterr().out == "" and target.read_bytes() == PAYLOAD
    assert dead in downloads._failed
    source = tmp_path / "local.bin"
    source.write_bytes(b"local")
    assert downloads.download(source.as_uri(), tmp_path / "copy.bin") == tmp_path / "copy.bin"
    assert (tmp_path / "copy.bin").read_bytes() == b"local"


def test_offline_tries_nothing_and_bad_arguments_are_refused(server, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LECTURE_UTILS_OFFLINE", "1")
    assert downloads.download(f"{server}/file", tmp_path / "file.bin") is None
    assert list(tmp_path.iterdir()) == [] and capsys.readouterr().out == ""
    monkeypatch.setenv("LECTURE_UTILS_OFFLINE", "sometimes")
    with pytest.raises(ValueError, match="LECTURE_UTILS_OFFLINE must be 1 or 0"):
        downloads.download(f"{server}/file", tmp_path / "file.bin")
    monkeypatch.setenv("LECTURE_UTILS_OFFLINE", "0")
    with pytest.raises(ValueError, match="timeout must be a positive number of seconds, got 0"):
        downloads.download(f"{server}/file", tmp_path / "f", timeout=0)
    with pytest.raises(ValueError, match="url must be a URL"):
        downloads.download("not a url", tmp_path / "f")
    with pytest.raises(ValueError, match="checksum must be"):
        downloads.download(f"{server}/file", tmp_path / "f", checksum=("crc32", "abc"))
