"""`mrbench data download` against a real HTTP server on loopback serving ../shared/data."""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from mrbench.data.catalog import get_spec
from mrbench.data.download import download
from mrbench.errors import MrbenchError
from mrbench.io import sha256_file
from tests.conftest import run_cli


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture
def server(shared_data: Path, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A loopback HTTP server over a copy of ../shared/data (the copy can be corrupted by tests)."""
    served = tmp_path / "served"
    shutil.copytree(shared_data / "charades_sta", served / "charades_sta")
    shutil.copytree(shared_data / "tacos", served / "tacos")
    handler = functools.partial(_QuietHandler, directory=str(served))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", served
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_download_verifies_and_is_idempotent(server: tuple[str, Path], tmp_path: Path) -> None:
    url, _ = server
    dest = tmp_path / "dest"
    results = download("charades_sta", dest, f"{url}/charades_sta")
    assert [r.status for r in results] == ["downloaded"] * 5
    for remote in get_spec("charades_sta").files.values():
        assert sha256_file(dest / remote.path) == remote.sha256
    assert [r.status for r in download("charades_sta", dest, f"{url}/charades_sta")] == ["up to date"] * 5
    assert not list(dest.rglob("*.part"))


def test_download_replaces_a_corrupted_local_file(server: tuple[str, Path], tmp_path: Path) -> None:
    url, _ = server
    dest = tmp_path / "dest"
    download("tacos", dest, f"{url}/tacos")
    (dest / "tacos_val_release.jsonl").write_text("garbage")
    statuses = {r.path.name: r.status for r in download("tacos", dest, f"{url}/tacos")}
    assert statuses["tacos_val_release.jsonl"] == "downloaded"
    assert statuses["tacos_test_release.jsonl"] == "up to date"


def test_checksum_mismatch_writes_nothing(server: tuple[str, Path], tmp_path: Path) -> None:
    url, served = server
    (served / "tacos" / "tacos_test_release.jsonl").write_bytes(b'{"tampered": true}\n')
    dest = tmp_path / "dest"
    with pytest.raises(MrbenchError, match="checksum mismatch for tacos_test_release.jsonl"):
        download("tacos", dest, f"{url}/tacos")
    assert not (dest / "tacos_test_release.jsonl").exists()
    assert not list(dest.rglob("*.part"))


def test_unreachable_and_missing_sources(server: tuple[str, Path], tmp_path: Path) -> None:
    url, _ = server
    with pytest.raises(MrbenchError, match="HTTP 404"):
        download("tacos", tmp_path / "d", f"{url}/nothing-here")
    with pytest.raises(MrbenchError, match="cannot reach http://127.0.0.1:9/"):
        download("tacos", tmp_path / "d", "http://127.0.0.1:9", timeout=2)
    with pytest.raises(MrbenchError, match="not a URL and not a directory"):
        download("tacos", tmp_path / "d", str(tmp_path / "missing"))


def test_download_from_a_local_directory(shared_data: Path, tmp_path: Path) -> None:
    results = download("qvhighlights", tmp_path / "qvh", str(shared_data / "qvhighlights"))
    assert len(results) == 4 and all(r.status == "downloaded" for r in results)


def test_cli_download_then_info(server: tuple[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url, _ = server
    dest = tmp_path / "dest"
    assert run_cli(["data", "download", "charades_sta", "--dest", str(dest), "--from", f"{url}/charades_sta"]) == 0
    assert "downloaded" in capsys.readouterr().out
    assert run_cli(["data", "info", "charades_sta", "--root", str(dest)]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split() for line in out.splitlines()[3:]}
    assert rows["train"][1] == "12404" and rows["test"][1] == "3720"


def test_cli_unreachable_is_exit_2_without_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = run_cli(["data", "download", "tacos", "--dest", str(tmp_path), "--from", "http://127.0.0.1:9", "--timeout", "2"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot reach") and "Traceback" not in err
