"""`nasty data fetch NAME`: download a dataset's official files into nasty's cache, checked.

nasty reads data from local files only (nasty/data/), so a search never waits on the
network. This module is the one place that downloads, and only when a person asks: the
files go to a cache folder (`$NASTY_CACHE/datasets/NAME`, by default
`~/.cache/nasty/datasets/NAME` after XDG's `$XDG_CACHE_HOME`), which the data loader
searches after Debian's `/usr/share/datasets/NAME`.

Each file is pinned by its SHA-256 (and the SHA-256 of its gunzipped content, which a
mirror that recompressed it still matches). A download goes to a hidden `.part` file beside
its destination, continues where an interrupted one stopped (an HTTP Range request), and
becomes the real file only after its checksum matched (an atomic rename): a half or
corrupt file never takes the real name. `NASTY_DATA_MIRROR` (or `--url`) points the fetch
at another server holding the same files, such as a local mirror or a test's server.
"""
from __future__ import annotations

import hashlib
import http.client
import os
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .errors import DatasetError

ENV_CACHE = "NASTY_CACHE"             # nasty's cache folder (datasets/ lives in it)
ENV_MIRROR = "NASTY_DATA_MIRROR"      # a base URL serving the same files, tried instead of the official ones
SYSTEM_DIR = Path("/usr/share/datasets")   # where Debian's dataset-* packages put their files
_CHUNK = 1 << 16
_TIMEOUT_S = 30


@dataclass(frozen=True)
class Remote:
    """One file of a dataset: its name, size in bytes and SHA-256, and the SHA-256 of its
    content once gunzipped (a mirror that recompressed the file, as Debian's package does,
    serves other .gz bytes of the same content)."""
    name: str
    size: int
    sha256: str
    content_sha256: str


@dataclass(frozen=True)
class Source:
    """Where a dataset's official files are published, and what they are."""
    name: str
    urls: tuple[str, ...]              # base URLs, tried in order; the first is the publisher's
    files: tuple[Remote, ...]
    licence: str


# Zalando Research's files (https://github.com/zalandoresearch/fashion-mnist, MIT licence), at the
# URLs its README gives. How the pins were made (docs/install.md, "Where the checksums come from"):
# Debian's dataset-fashion-mnist holds the same deflate streams with the gzip header's file name
# dropped and its time reset; putting back the name and the original time (2017-08-31 10:50:06 UTC
# for the train files, 10:50:27 for t10k) rebuilds files whose MD5s equal the four Zalando
# publishes, and the SHA-256s below are of those rebuilt official files. The content SHA-256s
# are of the gunzipped files (the same for Debian's and Zalando's), as other projects pin them too.
FASHION_MNIST = Source(
    "fashion-mnist",
    ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
     "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/"),
    (Remote("train-images-idx3-ubyte.gz", 26421880,
            "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
            "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"),
     Remote("train-labels-idx1-ubyte.gz", 29515,
            "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
            "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"),
     Remote("t10k-images-idx3-ubyte.gz", 4422102,
            "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
            "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"),
     Remote("t10k-labels-idx1-ubyte.gz", 5148,
            "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
            "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34")),
    "MIT, Zalando Research")

SOURCES = {s.name: s for s in (FASHION_MNIST,)}


# ------------------------------------------------------------------ where datasets live
def cache_root() -> Path:
    """nasty's cache folder: $NASTY_CACHE, else $XDG_CACHE_HOME/nasty, else ~/.cache/nasty."""
    if os.environ.get(ENV_CACHE):
        return Path(os.environ[ENV_CACHE]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg and Path(xdg).is_absolute() else Path.home() / ".cache") / "nasty"


def cache_dir(name: str) -> Path:
    """The folder `nasty data fetch NAME` fills."""
    return cache_root() / "datasets" / name


def candidate_dirs(name: str) -> list[Path]:
    """Where the data loader looks for dataset `name` without --data-dir, in order."""
    return [SYSTEM_DIR / name, cache_dir(name)]


def default_dir(name: str) -> Path | None:
    """The first candidate folder that holds dataset `name` (all of its files, for a dataset
    nasty can fetch; else any such folder), or None."""
    source = SOURCES.get(name)
    for d in candidate_dirs(name):
        if d.is_dir() and (source is None or all((d / f.name).is_file() for f in source.files)):
            return d
    return None


# ------------------------------------------------------------------ the fetch
def fetch(name: str, dest: str | Path | None = None, url: str | None = None, say=None, bar: bool = False) -> Path:
    """Download dataset `name`'s files into `dest` (default: `cache_dir(name)`), each checked
    against its pinned SHA-256 (or, for a mirror that recompressed it, its content's); files
    already there and intact are kept. `url`: a base URL to fetch from instead of the official
    ones (default: $NASTY_DATA_MIRROR). `say(text)` hears what happens, a line at a time; `bar`
    draws a progress bar per file (for a terminal). Returns the folder."""
    source = SOURCES.get(name)
    if source is None:
        raise DatasetError(f"nasty data fetch knows {', '.join(SOURCES)}; {name!r} is not one of them"
                           + ("" if name not in ("mnist", "cifar10", "cifar100") else
                              f": download {name} yourself and pass --data-dir"))
    bases = _bases(url if url is not None else os.environ.get(ENV_MIRROR), source)
    folder = Path(dest).expanduser() if dest is not None else cache_dir(name)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DatasetError(f"cannot create {folder}: {e.strerror or e}; pass --dir DIR, or set {ENV_CACHE} to a "
                           "folder you can write") from None
    say = say or (lambda text: None)
    say(f"fetching {name} into {folder} ({len(source.files)} files, {sum(f.size for f in source.files) / 1e6:.0f} MB, "
        f"licence: {source.licence})")
    from filelock import FileLock
    with FileLock(str(folder / ".fetch.lock")):        # two fetches into one folder take turns
        for remote in source.files:
            target = folder / remote.name
            if target.is_file() and _intact(target, remote):
                say(f"  {remote.name}: already there, checksum ok")
                continue
            start = time.perf_counter()
            where = _download(remote, bases, target, bar)
            say(f"  {remote.name}: {target.stat().st_size / 1e6:.1f} MB from {where} in "
                f"{time.perf_counter() - start:.1f} s, checksum ok")
    return folder


def _bases(url: str | None, source: Source) -> tuple[str, ...]:
    if not url:
        return source.urls
    if not url.startswith(("http://", "https://")):
        raise DatasetError(f"the mirror URL must start with http:// or https://, got {url!r}")
    return (url if url.endswith("/") else url + "/",)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _content_sha256(path: Path, limit: int) -> str | None:
    """SHA-256 of `path` gunzipped (None: not gzip, or more than `limit` bytes once unpacked)."""
    import gzip
    import zlib
    h, n = hashlib.sha256(), 0
    try:
        with gzip.open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                n += len(block)
                if n > limit:
                    return None
                h.update(block)
    except (OSError, EOFError, zlib.error):
        return None
    return h.hexdigest()


def _intact(path: Path, remote: Remote) -> bool:
    """Whether `path` is `remote`: the official bytes, or (recompressed) the official content."""
    return _sha256(path) == remote.sha256 or _content_sha256(path, 64 * remote.size) == remote.content_sha256


def _download(remote: Remote, bases, target: Path, bar: bool) -> str:
    """Fetch `remote` into `target` through its `.part` file, from the first base that answers;
    returns the URL used. A checksum mismatch, or network errors from every base: one-line errors."""
    part = target.with_name(f".{target.name}.part")
    errors = []
    for base in bases:
        url = base + remote.name
        try:
            _get(url, part, remote, bar)
        except _NetworkError as e:
            errors.append(f"{url}: {e}")
            continue
        if not _intact(part, remote):
            digest = _sha256(part)
            part.unlink(missing_ok=True)
            raise DatasetError(f"checksum mismatch for {remote.name} from {url}: sha256 {digest[:16]}..., expected "
                               f"{remote.sha256[:16]}...; the file was not kept; run the command again, or fetch "
                               "from another server with --url")
        os.replace(part, target)                   # the real name only for a checked file
        return url
    raise DatasetError(f"cannot download {remote.name}: {'; '.join(errors)}; check the network (behind a proxy: "
                       f"set HTTPS_PROXY), run the command again to continue, or put the files in {target.parent} "
                       "yourself")


class _NetworkError(Exception):
    """A server that cannot be reached, or does not send the whole file (the next base is tried)."""


def _get(url: str, part: Path, remote: Remote, bar: bool) -> None:
    """Append the rest of `url` to `part`, continuing after the bytes it already holds."""
    have = part.stat().st_size if part.is_file() else 0
    limit = 4 * remote.size + (1 << 20)                 # a recompressed copy is near the official size
    if have > limit:
        part.unlink()
        have = 0
    headers = {"User-Agent": "nasty-data-fetch", **({"Range": f"bytes={have}-"} if have else {})}
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers),  # noqa: S310
                                          timeout=_TIMEOUT_S)                              # http(s) only: checked
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:                       # nothing after what the part holds: it is whole
            return
        raise _NetworkError(f"HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError) as e:
        raise _NetworkError(str(getattr(e, "reason", None) or e)) from None
    with response:
        if response.status != 206:                       # the whole file (a server without ranges too)
            have = 0
        length = response.headers.get("Content-Length")
        total = have + int(length) if length and length.isdigit() else None
        try:
            with open(part, "ab" if have else "wb") as out, \
                    _Bar(remote.name, total or remote.size, have, bar) as progress:
                while True:
                    block = response.read(_CHUNK)
                    if not block:
                        break
                    out.write(block)
                    have += len(block)
                    progress.advance(len(block))
                    if have > limit:
                        break                            # not this file: the checksum says so
        except (OSError, http.client.HTTPException) as e:  # IncompleteRead is not an OSError
            if isinstance(e, OSError) and e.filename:
                raise DatasetError(f"cannot write {part}: {e.strerror}") from None
            raise _NetworkError(f"the connection broke after {have:,} bytes ({e}); run the command again "
                                "to continue") from None
    if total is not None and have < total:
        raise _NetworkError(f"the server sent {have:,} of {total:,} bytes; run the command again to continue")


class _Bar:
    """A rich progress bar for one file on a terminal; nothing otherwise."""

    def __init__(self, name: str, total: int, done: int, show: bool):
        self.progress = None
        if show:
            from rich.console import Console
            from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn,
                                       TransferSpeedColumn)
            self.progress = Progress(TextColumn(f"  {name}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                                     TimeRemainingColumn(), transient=True, console=Console(stderr=True))
            self.task = self.progress.add_task(name, total=total, completed=done)

    def __enter__(self):
        if self.progress is not None:
            self.progress.start()
        return self

    def advance(self, n: int) -> None:
        if self.progress is not None:
            self.progress.advance(self.task, n)

    def __exit__(self, *exc):
        if self.progress is not None:
            self.progress.stop()
