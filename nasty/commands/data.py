"""`nasty data fetch NAME` (download a dataset's official files into nasty's cache, checked)
and `nasty data list` (the datasets, and where the loader finds each)."""
from __future__ import annotations


def add_parser(sub):
    p = sub.add_parser("data", help="fetch a dataset into nasty's cache (fashion-mnist); list where datasets are",
                       description="Datasets are read from local files only. `nasty data fetch fashion-mnist` "
                                   "downloads the four official Fashion-MNIST files (30 MB) into nasty's cache "
                                   "(~/.cache/nasty/datasets/, or $NASTY_CACHE/datasets/), each checked against "
                                   "its pinned SHA-256; the loader looks there after /usr/share/datasets/.")
    s = p.add_subparsers(dest="action", metavar="ACTION")
    s.required = True
    f = s.add_parser("fetch", help="download a dataset's official files, checked (resumes an interrupted one)",
                     description="Download a dataset's official files into nasty's cache, each checked against "
                                 "its pinned size and SHA-256. An interrupted download continues where it stopped; "
                                 "a file becomes visible only once its checksum matched.")
    f.add_argument("name", metavar="NAME", help="the dataset: fashion-mnist")
    f.add_argument("--dir", metavar="DIR", help="put the files here instead of the cache (then pass --data-dir DIR)")
    f.add_argument("--url", metavar="BASE", help="fetch from this base URL (a mirror holding the same files) "
                                                  "instead of the publisher's; default $NASTY_DATA_MIRROR")
    f.set_defaults(func=run_fetch)
    ls = s.add_parser("list", help="the datasets nasty reads and where it finds each")
    ls.set_defaults(func=run_list)


def run_fetch(args) -> int:
    import sys

    from ..data_fetch import fetch
    folder = fetch(args.name, args.dir, args.url, say=lambda line: print(line, flush=True),
                   bar=sys.stderr.isatty())
    print(f"{args.name} is in {folder}" + (f"; pass --data-dir {folder}" if args.dir else
                                           "; nasty finds it there by itself"))
    return 0


def run_list(args) -> int:
    from ..data import DATASETS
    from ..data_fetch import SOURCES, candidate_dirs, default_dir
    from ..display import text_table
    rows = []
    for name in DATASETS:
        if name == "imagefolder":
            rows.append((name, "--data-dir DIR (your own images)", ""))
            continue
        found = default_dir(name)
        where = str(found) if found else "not found in " + " or ".join(str(d) for d in candidate_dirs(name))
        rows.append((name, where, f"nasty data fetch {name}" if name in SOURCES else "--data-dir DIR"))
    print(text_table(("dataset", "where", "to get it"), rows, align=["left", "left", "left"]))
    return 0
