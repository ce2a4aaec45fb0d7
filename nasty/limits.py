"""The sizes of what nasty reads besides genotypes: datasets in memory, image files, classes,
threads, config files, and the free space a run folder needs. Each is checked before anything
is allocated or started, and refused with a one-line error naming the figure and the limit, so
that no input can hang nasty, exhaust its memory or end in a raw MemoryError.

docs/limits.md lists every limit with the reason for its value (a test keeps it in step with
this file); a genotype's own limits are in nasty/genotype/limits.py.
"""
from __future__ import annotations

import os

MAX_IMAGE_SIDE = 4096                # height and width of a stored image: --image-size, and a folder's
                                     # images kept at their own size (ImageNet's are ~400; 4K video 3840)
MAX_IMAGE_PIXELS = 2 ** 26           # pixels of one image file to decode (8192 x 8192; a 48 MP phone photo
                                     # is 8000 x 6000), below Pillow's own bomb warning (89 M pixels)
MAX_CLASSES = 100_000                # classes of a dataset (ImageNet-21k: 21,841; --target-classes: 100,000)
MAX_IMAGES = 2 ** 31 - 1             # images of one dataset (ImageNet-21k: 14 M), before any is read
MAX_THREADS_PER_CPU = 4              # --threads at most 4 x the CPUs: more only slows torch down
MAX_CONFIG_BYTES = 1_000_000         # a --config file (a full config.json is ~2 KB)
MIN_FREE_BYTES = 64 * 2 ** 20        # free space a new or resumed run folder needs to start (a search
                                     # writes weights, study.db and plots: ~5 MB for 48 small trials)
MEMORY_ENV = "NASTY_MAX_DATA_BYTES"  # overrides memory_limit(): bytes a dataset's images may take
DEFAULT_MEMORY = 64 * 2 ** 30        # memory_limit() where the machine's memory cannot be read

DOCS = "see docs/limits.md"


def over(what: str, value, limit) -> str:
    """The message every limit here uses: what, the value, the limit."""
    def fmt(v):
        return f"{v:,}" if isinstance(v, int) else str(v)
    return f"{what} {fmt(value)} is over the limit of {fmt(limit)} ({DOCS})"


def memory_limit() -> int:
    """Bytes a dataset's images may take in memory: the machine's memory (the smaller of its RAM
    and a cgroup's memory limit), or NASTY_MAX_DATA_BYTES. A dataset is held whole in memory as
    uint8 (N, C, H, W); anything larger could only end in a MemoryError or the kernel's OOM killer."""
    given = os.environ.get(MEMORY_ENV)
    if given:
        try:
            return max(1, int(float(given)))
        except ValueError:
            pass
    sizes = []
    try:
        sizes.append(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, OSError, ValueError):
        pass
    for f in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(f) as fh:
                sizes.append(int(fh.read().strip()))
        except (OSError, ValueError):
            pass
    sizes = [s for s in sizes if 0 < s < 2 ** 60]          # "max" and v1's 2**63 mean no limit
    return min(sizes) if sizes else DEFAULT_MEMORY


def human_bytes(n: int) -> str:
    for unit, size in (("TiB", 2 ** 40), ("GiB", 2 ** 30), ("MiB", 2 ** 20), ("KiB", 2 ** 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} bytes"


def memory_problem(what: str, nbytes: int, limit: int | None = None) -> str | None:
    """What is wrong with holding `nbytes` of images in memory, or None."""
    source = ("the limit given" if limit is not None else MEMORY_ENV if os.environ.get(MEMORY_ENV)
              else "this machine's memory")
    limit = memory_limit() if limit is None else limit
    if nbytes <= limit:
        return None
    return (f"{what} would take {human_bytes(nbytes)} in memory, more than the {human_bytes(limit)} "
            f"allowed ({source}; {DOCS})")


def max_threads() -> int:
    return MAX_THREADS_PER_CPU * (os.cpu_count() or 1)


def threads_problem(n, flag: str = "--threads") -> str | None:
    """What is wrong with a thread count, or None (None itself means the default)."""
    if n is None:
        return None
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        return f"{flag} must be a whole number of at least 1, got {n!r}"
    if n > max_threads():
        return (f"{flag} {n:,} is more than {MAX_THREADS_PER_CPU}x the {os.cpu_count()} CPUs of this machine "
                f"(at most {max_threads():,}; more threads only slow torch down; {DOCS})")
    return None
