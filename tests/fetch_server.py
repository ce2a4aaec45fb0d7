"""A real HTTP server on 127.0.0.1 for the tests of `nasty data fetch`, and the official
Fashion-MNIST files it serves, rebuilt byte for byte from Debian's copies (Debian's package holds
the same deflate streams with the gzip header's file name dropped and its time reset)."""
from __future__ import annotations

import http.server
import struct
import threading
from pathlib import Path

DEBIAN = Path("/usr/share/datasets/fashion-mnist")
# The original gzip header times of Zalando's files (found by matching their published MD5s).
MTIMES = {"train": 1504176606, "t10k": 1504176627}
ZALANDO_MD5 = {"train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
               "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
               "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
               "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310"}


def official(name: str) -> bytes:
    """Zalando's file `name`, rebuilt from Debian's copy: the gzip header with its file name
    (FNAME) and the original time put back; the deflate stream and trailer are Debian's."""
    raw = (DEBIAN / name).read_bytes()
    assert raw[:4] == b"\x1f\x8b\x08\x00"                 # Debian's: no FNAME
    stem = name[:-len(".gz")]
    return b"\x1f\x8b\x08\x08" + struct.pack("<I", MTIMES[stem.split("-")[0]]) + raw[8:10] + stem.encode() + b"\0" \
        + raw[10:]


class Server:
    """Serves {name: bytes} on 127.0.0.1 with HTTP Range support. `cut[name] = n`: the next
    response for `name` stops after n bytes (a dropped connection). Records each request's Range."""

    def __init__(self, files: dict[str, bytes]):
        self.files, self.cut, self.requests = dict(files), {}, []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):                              # noqa: N802 - http.server's name
                name = self.path.lstrip("/")
                rng = self.headers.get("Range")
                server.requests.append((name, rng))
                if name not in server.files:
                    self.send_error(404)
                    return
                body, start = server.files[name], 0
                if rng:
                    start = int(rng.split("=")[1].split("-")[0])
                    if start >= len(body):
                        self.send_error(416)
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                stop = server.cut.pop(name, None)
                self.wfile.write(body[start:stop] if stop is not None else body[start:])

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
