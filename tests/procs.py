"""Processes of a test: a `nasty search` subprocess and every Ray process it starts share its
session, so they can be found (and killed, and their sockets read) through /proc."""
import os
import signal
from pathlib import Path


def session_pids(sid: int) -> list[int]:
    """Processes in session `sid` (the search and every Ray process it started)."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
                fields = stat[stat.rindex(")") + 2:].split()
                if int(fields[3]) == sid:          # field 6 of /proc/PID/stat: the session id
                    out.append(int(d.name))
            except (OSError, ValueError, IndexError):
                pass
    return out


def kill_session(sid: int):
    for pid in session_pids(sid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def listening_sockets(pids) -> list[tuple[str, int]]:
    """(address, port) of every TCP socket in LISTEN state held by one of `pids` (from /proc)."""
    import ipaddress
    inodes = set()
    for pid in pids:
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                try:
                    target = os.readlink(fd)
                except OSError:
                    continue
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:
            pass
    out = []
    for table, size in (("/proc/net/tcp", 4), ("/proc/net/tcp6", 16)):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if f[3] != "0A" or f[9] not in inodes:        # 0A: LISTEN
                continue
            hexaddr, hexport = f[1].split(":")
            raw = bytes.fromhex(hexaddr)
            # /proc/net/tcp{,6} store each 32-bit word in host (little-endian) order
            raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
            out.append((str(ipaddress.ip_address(raw)), int(hexport, 16)))
    return out
