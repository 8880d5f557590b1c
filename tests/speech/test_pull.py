"""`ivr models pull` against a local HTTP server: download, resume, verify, atomic unpack."""

from __future__ import annotations

import http.server
import io
import random
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from ivr.speech.models import is_model_dir, resolve_model
from ivr.speech.pull import ModelSource, PullError, download, pull


def model_zip(top: str = "vosk-model-small-xx-0.1") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{top}/am/final.mdl", random.Random(1).randbytes(60_000))  # incompressible
        zf.writestr(f"{top}/conf/mfcc.conf", "--use-energy=false\n--sample-frequency=8000\n")
        zf.writestr(f"{top}/conf/model.conf", "--beam=10.0\n")
        zf.writestr(f"{top}/graph/HCLG.fst", b"\x00fst" * 5000)
        zf.writestr(f"{top}/README", "a test model\n")
    return buffer.getvalue()


class Server:
    """Serves one file with Range support; can cut the first transfer short or ignore Range."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.cut_after: int | None = None  # bytes of the next response, then drop the connection
        self.honour_range = True
        self.requests: list[str | None] = []  # the Range header of each request
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append(self.headers.get("Range"))
                start = 0
                wanted = self.headers.get("Range")
                if wanted and server.honour_range:
                    start = int(wanted.removeprefix("bytes=").split("-")[0])
                    if start >= len(server.body):
                        self.send_response(416)
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header(
                        "Content-Range", f"bytes {start}-{len(server.body) - 1}/{len(server.body)}"
                    )
                else:
                    self.send_response(200)
                payload = server.body[start:]
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if server.cut_after is not None:
                    payload, server.cut_after = payload[: server.cut_after], None
                    self.wfile.write(payload)
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/model.zip"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def body() -> bytes:
    return model_zip()


@pytest.fixture
def server(body: bytes) -> Iterator[Server]:
    with Server(body) as running:
        yield running


def test_pull_downloads_verifies_and_unpacks(tmp_path: Path, server: Server, body: bytes) -> None:
    seen: list[tuple[int, int | None]] = []
    target = pull(
        "xx", tmp_path, source=ModelSource("test", server.url), progress=lambda d, t: seen.append((d, t))
    )
    assert target == tmp_path / "xx" and is_model_dir(target)
    assert (target / "README").read_text() == "a test model\n"  # the archive's top directory is gone
    assert seen[-1] == (len(body), len(body))
    assert not (tmp_path / "xx.zip.part").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["xx"]  # no staging left behind
    info = resolve_model("xx", env={}, cache_dir=tmp_path)
    assert info is not None and (info.source, info.sample_rate) == ("cache", 8000)


def test_an_interrupted_transfer_resumes_with_a_range_request(
    tmp_path: Path, server: Server, body: bytes
) -> None:
    server.cut_after = 10_000
    source = ModelSource("test", server.url)
    with pytest.raises(PullError, match="run again to resume"):
        pull("xx", tmp_path, source=source)
    part = tmp_path / "xx.zip.part"
    assert part.stat().st_size == 10_000
    assert not (tmp_path / "xx").exists()
    pull("xx", tmp_path, source=source)
    assert server.requests == [None, "bytes=10000-"]
    assert is_model_dir(tmp_path / "xx")


def test_a_server_that_ignores_range_restarts_the_file(tmp_path: Path, server: Server, body: bytes) -> None:
    part = tmp_path / "x.part"
    part.write_bytes(body[:5000])
    server.honour_range = False
    download(server.url, part)
    assert part.read_bytes() == body


def test_a_complete_part_file_is_not_fetched_again(tmp_path: Path, server: Server, body: bytes) -> None:
    part = tmp_path / "x.part"
    part.write_bytes(body)
    download(server.url, part)  # the server answers 416: nothing past the end
    assert part.read_bytes() == body


def test_a_corrupt_archive_is_rejected_and_discarded(tmp_path: Path, body: bytes) -> None:
    damaged = bytearray(body)
    damaged[200:260] = bytes(60)  # inside the first member's compressed data: its CRC fails
    with Server(bytes(damaged)) as bad:
        with pytest.raises(PullError, match=r"corrupt|not a valid zip"):
            pull("xx", tmp_path, source=ModelSource("test", bad.url))
    assert not (tmp_path / "xx").exists() and not (tmp_path / "xx.zip.part").exists()


def test_an_archive_without_a_model_is_rejected(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("top/readme.txt", "no model here")
    with Server(buffer.getvalue()) as wrong:
        with pytest.raises(PullError, match="no Vosk model inside"):
            pull("xx", tmp_path, source=ModelSource("test", wrong.url))
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_checksum_mismatch_is_rejected(tmp_path: Path, server: Server) -> None:
    with pytest.raises(PullError, match="sha256"):
        pull("xx", tmp_path, source=ModelSource("test", server.url, sha256="0" * 64))


def test_a_new_pull_replaces_the_old_model(tmp_path: Path, server: Server) -> None:
    source = ModelSource("test", server.url)
    pull("xx", tmp_path, source=source)
    (tmp_path / "xx" / "stale").write_text("old")
    pull("xx", tmp_path, source=source)
    assert not (tmp_path / "xx" / "stale").exists() and is_model_dir(tmp_path / "xx")


def test_unknown_language_names_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(PullError, match="known: de, en"):
        pull("tlh", tmp_path)
