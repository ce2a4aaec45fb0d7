"""`nasty data fetch fashion-mnist`: the four official files, checked against their pinned
SHA-256, into nasty's cache (where the loader then finds them), resumable and atomic.

The server is a real HTTP server on 127.0.0.1 (with Range support) serving files this test
makes: the official Zalando files, rebuilt byte for byte from Debian's copies (the same deflate
streams; Debian drops the gzip header's file name and resets its time), and Debian's own
recompressed copies, which match the pinned content checksum."""
from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import pytest

from nasty import data_fetch
from nasty.cli import main
from nasty.data import load_dataset
from nasty.errors import DatasetError

from fetch_server import DEBIAN, ZALANDO_MD5, Server, official

pytestmark = pytest.mark.skipif(not all((DEBIAN / f).is_file() for f in ZALANDO_MD5),
                                reason="needs Debian's dataset-fashion-mnist")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty nasty cache, and no Debian folder: the loader must find the fetched files."""
    monkeypatch.setenv(data_fetch.ENV_CACHE, str(tmp_path / "cache"))
    monkeypatch.delenv(data_fetch.ENV_MIRROR, raising=False)
    monkeypatch.setattr(data_fetch, "SYSTEM_DIR", tmp_path / "no-debian")
    return tmp_path / "cache" / "datasets" / "fashion-mnist"


def test_the_pins_are_zalandos_files():
    """The pinned SHA-256s are of files whose MD5s are the ones Zalando publishes, and the
    content pins are of what Debian's files unpack to."""
    for remote in data_fetch.FASHION_MNIST.files:
        body = official(remote.name)
        assert hashlib.md5(body).hexdigest() == ZALANDO_MD5[remote.name]
        assert len(body) == remote.size and hashlib.sha256(body).hexdigest() == remote.sha256
        assert hashlib.sha256(gzip.decompress((DEBIAN / remote.name).read_bytes())).hexdigest() == remote.content_sha256


def test_fetch_from_a_local_server_then_the_loader_finds_it(cache, capsys):
    with Server({n: official(n) for n in ZALANDO_MD5}) as server:
        # the missing-data error names the command first
        with pytest.raises(DatasetError, match="nasty data fetch fashion-mnist"):
            load_dataset("fashion-mnist")
        rc = main(["data", "fetch", "fashion-mnist", "--url", server.url])
        out, err = capsys.readouterr()
        assert rc == 0, err
        assert out.count("checksum ok") == 4 and str(cache) in out
        for name in ZALANDO_MD5:
            assert hashlib.md5((cache / name).read_bytes()).hexdigest() == ZALANDO_MD5[name]
        assert not list(cache.glob(".*.part"))
        d = load_dataset("fashion-mnist")                        # no --data-dir: found in the cache
        assert d.describe()["source"] == str(cache) and len(d.train_x) == 60_000 and len(d.test_x) == 10_000
        # a second fetch keeps what is there and asks the server for nothing
        before = len(server.requests)
        assert main(["data", "fetch", "fashion-mnist", "--url", server.url]) == 0
        assert len(server.requests) == before and capsys.readouterr().out.count("already there") == 4


def test_an_interrupted_download_continues_and_never_leaves_a_half_file(cache, monkeypatch, capsys):
    name = "train-images-idx3-ubyte.gz"
    with Server({n: official(n) for n in ZALANDO_MD5}) as server:
        server.cut[name] = 3_000_000                            # the connection drops after 3 MB
        monkeypatch.setenv(data_fetch.ENV_MIRROR, server.url)   # the env var instead of --url
        rc = main(["data", "fetch", "fashion-mnist"])
        err = capsys.readouterr().err
        assert rc == 2 and err.startswith("nasty: error: cannot download train-images") and err.count("\n") == 1
        assert "run the command again to continue" in err
        assert not (cache / name).exists()                      # never the real name for half a file
        assert (cache / f".{name}.part").stat().st_size == 3_000_000
        assert main(["data", "fetch", "fashion-mnist"]) == 0
        assert (name, "bytes=3000000-") in server.requests      # continued, not started over
        assert hashlib.md5((cache / name).read_bytes()).hexdigest() == ZALANDO_MD5[name]
        assert not list(cache.glob(".*.part"))


def test_a_checksum_mismatch_is_one_line_and_keeps_nothing(cache, capsys):
    files = {n: official(n) for n in ZALANDO_MD5}
    bad = bytearray(files["t10k-labels-idx1-ubyte.gz"])
    bad[100] ^= 0xFF                                           # one flipped byte
    files["t10k-labels-idx1-ubyte.gz"] = bytes(bad)
    with Server(files) as server:
        rc = main(["data", "fetch", "fashion-mnist", "--url", server.url])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1
    assert err.startswith("nasty: error: checksum mismatch for t10k-labels-idx1-ubyte.gz from http://127.0.0.1:")
    assert not (cache / "t10k-labels-idx1-ubyte.gz").exists() and not list(cache.glob(".*.part"))


def test_a_mirror_that_recompressed_the_files_is_accepted_by_content(cache, capsys):
    """Debian's copies (other .gz bytes, the same content) pass the content checksum."""
    with Server({n: (DEBIAN / n).read_bytes() for n in ZALANDO_MD5}) as server:
        assert main(["data", "fetch", "fashion-mnist", "--url", server.url]) == 0
    assert load_dataset("fashion-mnist").train_x.shape == (60_000, 1, 28, 28)


def test_unreachable_server_and_unknown_dataset_are_one_line(cache, capsys):
    with Server({}) as server:                                  # answers 404 for everything
        rc = main(["data", "fetch", "fashion-mnist", "--url", server.url])
    err = capsys.readouterr().err
    assert rc == 2 and "HTTP 404" in err and err.count("\n") == 1
    rc = main(["data", "fetch", "cifar10"])
    err = capsys.readouterr().err
    assert rc == 2 and "knows fashion-mnist" in err and "--data-dir" in err


def test_the_cache_follows_xdg_and_nasty_cache(monkeypatch, tmp_path):
    monkeypatch.delenv(data_fetch.ENV_CACHE, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data_fetch.cache_dir("fashion-mnist") == tmp_path / "xdg" / "nasty" / "datasets" / "fashion-mnist"
    monkeypatch.setenv(data_fetch.ENV_CACHE, str(tmp_path / "mine"))
    assert data_fetch.cache_dir("fashion-mnist") == tmp_path / "mine" / "datasets" / "fashion-mnist"
    # Debian's folder comes first when both hold the data
    assert data_fetch.candidate_dirs("fashion-mnist")[0] == Path("/usr/share/datasets/fashion-mnist")
