"""Downloads against a server on 127.0.0.1 serving archives the tests build."""

from __future__ import annotations

import hashlib
import io
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from audio_core.cli import main as audio_run
from audio_data.download import download_archive, extract_archive, fetch_dataset
from audio_data.errors import DataError
from audio_data.sources import SOURCES, source


class Server:
    """Serves ``files`` with Range support; ``cut[name] = n`` stops after ``n`` bytes once."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.cut: dict[str, int] = {}
        self.requests: list[tuple[str, str | None]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                name = self.path.lstrip("/")
                outer.requests.append((name, self.headers.get("Range")))
                if name not in outer.files:
                    self.send_error(404, "Not Found")
                    return
                body = outer.files[name]
                start = 0
                if self.headers.get("Range"):
                    start = int(self.headers["Range"].split("=")[1].split("-")[0])
                    if start >= len(body):
                        self.send_error(416, "Range Not Satisfiable")
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                stop = len(body)
                if name in outer.cut:
                    stop = min(stop, outer.cut.pop(name))
                self.wfile.write(body[start:stop])

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def server() -> Iterator[Server]:
    srv = Server()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


DATASET = {f"sc09/{w}/a_nohash_0.wav": bytes(range(256)) * 40 for w in ("zero", "one")}


def test_a_whole_download_is_verified_and_unpacked(server: Server, tmp_path: Path) -> None:
    body = zip_bytes({**DATASET, "sc09/validation_list.txt": b"one/a_nohash_0.wav\n"})
    server.files["sc09.zip"] = body
    target = fetch_dataset(
        f"{server.url}/sc09.zip",
        tmp_path / "data" / "sc09",
        sha256=hashlib.sha256(body).hexdigest(),
        size=len(body),
        progress=False,
    )
    assert (target / "zero" / "a_nohash_0.wav").read_bytes() == DATASET["sc09/zero/a_nohash_0.wav"]
    assert (target / "validation_list.txt").is_file()
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["sc09"]  # archive removed


def test_a_broken_transfer_resumes_from_the_partial_file(server: Server, tmp_path: Path) -> None:
    body = zip_bytes(DATASET)
    server.files["sc09.zip"] = body
    server.cut["sc09.zip"] = 1000
    archive = tmp_path / "sc09.zip"
    with pytest.raises(DataError, match=r"broke off after 1000 of \d+ bytes; run the same command"):
        download_archive(f"{server.url}/sc09.zip", archive, progress=False)
    assert (tmp_path / "sc09.zip.part").stat().st_size == 1000
    assert not archive.exists()
    download_archive(
        f"{server.url}/sc09.zip", archive, sha256=hashlib.sha256(body).hexdigest(), progress=False
    )
    assert archive.read_bytes() == body
    assert server.requests[-1] == ("sc09.zip", "bytes=1000-")
    assert not (tmp_path / "sc09.zip.part").exists()


def test_a_checksum_mismatch_deletes_the_file(server: Server, tmp_path: Path) -> None:
    server.files["sc09.zip"] = zip_bytes(DATASET)
    with pytest.raises(DataError, match=r"SHA-256 [0-9a-f]{64} does not match the expected 0+"):
        download_archive(
            f"{server.url}/sc09.zip", tmp_path / "a.zip", sha256="0" * 64, progress=False
        )
    assert list(tmp_path.iterdir()) == []


def test_a_wrong_size_deletes_the_file(server: Server, tmp_path: Path) -> None:
    server.files["x.zip"] = b"12345"
    with pytest.raises(DataError, match=r"got 5 bytes, expected 6"):
        download_archive(f"{server.url}/x.zip", tmp_path / "x.zip", size=6, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_a_missing_url_names_the_status(server: Server, tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"/nope.zip: the server answered 404"):
        download_archive(f"{server.url}/nope.zip", tmp_path / "n.zip", progress=False)


@pytest.mark.parametrize("evil", ["../escaped.txt", "/abs/escaped.txt", "ok/../../escaped.txt"])
def test_a_zip_escaping_the_target_is_refused(tmp_path: Path, evil: str) -> None:
    archive = tmp_path / "evil.zip"
    archive.write_bytes(zip_bytes({"sc09/zero/a.wav": b"x", evil: b"owned"}))
    with pytest.raises(DataError, match=r"would be written outside the target folder"):
        extract_archive(archive, tmp_path / "out" / "sc09")
    assert not (tmp_path / "escaped.txt").exists()
    assert not (tmp_path / "out" / "escaped.txt").exists()
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_a_tar_with_a_link_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "evil.tar"
    with tarfile.open(archive, "w") as tf:
        link = tarfile.TarInfo("sc09/link")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        tf.addfile(link)
    with pytest.raises(DataError, match=r"'sc09/link' would be written outside"):
        extract_archive(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_an_existing_folder_is_kept_without_force(tmp_path: Path) -> None:
    archive = tmp_path / "a.zip"
    archive.write_bytes(zip_bytes(DATASET))
    extract_archive(archive, tmp_path / "sc09")
    (tmp_path / "sc09" / "mine").write_text("keep")
    with pytest.raises(DataError, match=r"already exists; pass --force"):
        extract_archive(archive, tmp_path / "sc09")
    assert (tmp_path / "sc09" / "mine").read_text() == "keep"
    extract_archive(archive, tmp_path / "sc09", force=True)  # a folder it wrote: replaced
    assert not (tmp_path / "sc09" / "mine").exists()
    assert (tmp_path / "sc09" / "zero" / "a_nohash_0.wav").exists()


def test_force_never_replaces_a_folder_it_did_not_write(tmp_path: Path) -> None:
    archive = tmp_path / "a.zip"
    archive.write_bytes(zip_bytes(DATASET))
    (tmp_path / "sc09").mkdir()
    (tmp_path / "sc09" / "mine").write_text("keep")
    with pytest.raises(DataError, match=r"sc09 is a folder that audio-run did not write"):
        extract_archive(archive, tmp_path / "sc09", force=True)
    assert (tmp_path / "sc09" / "mine").read_text() == "keep"
    (tmp_path / "file").write_text("keep")
    with pytest.raises(DataError, match=r"file exists and is not a folder"):
        extract_archive(archive, tmp_path / "file", force=True)
    assert (tmp_path / "file").read_text() == "keep"


def test_urls_live_in_one_place_and_can_be_overridden() -> None:
    assert set(SOURCES) == {"sc09", "beethoven", "youtubemix"}
    assert all(s.url.startswith("https://") for s in SOURCES.values())
    override = source("sc09", {"AUDIO_DATA_URL_SC09": "http://127.0.0.1:1/x.zip"})
    assert override.url == "http://127.0.0.1:1/x.zip"
    assert override.sha256 == ""  # a mirror's checksum is unknown


def test_the_cli_downloads_and_reports_errors(
    server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server.files["sc09.zip"] = zip_bytes(DATASET)
    target = tmp_path / "sc09"
    argv = ["data", "download", "sc09", "--root", str(target), "--url", f"{server.url}/sc09.zip"]
    assert audio_run([*argv, "--quiet"]) == 0
    assert f"sc09: ready in {target}" in capsys.readouterr().out
    assert audio_run([*argv, "--quiet"]) == 2
    assert f"audio-run: error: {target} already exists; pass --force" in capsys.readouterr().err
    assert (
        audio_run(
            [
                "data",
                "download",
                "sc09",
                "--root",
                str(tmp_path / "b"),
                "--quiet",
                "--url",
                f"{server.url}/missing.zip",
            ]
        )
        == 2
    )
    assert "the server answered 404" in capsys.readouterr().err
