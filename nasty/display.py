"""How nasty shows numbers and tables to a person: human-readable quantities (12.3M),
rich tables rendered as plain text (for files and pipes), and the per-layer cost table."""
from __future__ import annotations


def text_table(header, rows, align=None, title: str | None = None) -> str:
    """A table as plain text with aligned columns (a rich Table, rendered without colour).
    `align`: per column "left" or "right" (default: right for all but the first)."""
    import io

    from rich import box
    from rich.console import Console
    from rich.table import Table
    align = align or ["left"] + ["right"] * (len(header) - 1)
    rule = box.Box("    \n    \n -  \n    \n    \n    \n    \n    \n", ascii=True)   # a dashed rule under the header
    t = Table(box=rule, title=title, show_edge=False, pad_edge=False, highlight=False)
    for h, a in zip(header, align):
        t.add_column(h, justify=a, no_wrap=True)
    for r in rows:
        t.add_row(*[str(v) for v in r])
    out = io.StringIO()
    Console(file=out, width=10_000, color_system=None, force_terminal=False, legacy_windows=False).print(t)
    return "\n".join(line.rstrip() for line in out.getvalue().splitlines()).strip("\n")


def human(n: float, base: int = 1000) -> str:
    """12_345_678 -> '12.3M' (base 1000) or, for bytes, base 1024 -> '11.8Mi'."""
    units = ["", "K", "M", "G", "T"]
    i = 0
    try:
        x = float(n)
    except OverflowError:          # an int beyond 1e308 (an absurd network): still one short word
        return f"{'-' if n < 0 else ''}~1e{int(abs(n).bit_length() * 0.30103)}"
    while abs(x) >= base and i < len(units) - 1:
        x /= base
        i += 1
    suffix = units[i] + ("i" if base == 1024 and i else "")
    return f"{x:.3g}{suffix}" if i else f"{int(n)}"


def layer_table(cost, zero_rows: bool = True, latency=None) -> str:
    """The per-layer cost table of `nasty show` (shapes as CxHxW, as the header, the language and errors).
    The op column names the op as written (`dwconv`, `sep`, not the conv they compile to): the name
    a `defaults OP.ATTR` line must use to reach that layer.
    `latency`: per-layer predicted milliseconds (a nasty.latency Prediction's layers), a column more."""
    ms = [f"{x.ms:.4f}" for x in latency] if latency is not None else None
    rows = [(l.name, l.as_written, "x".join(str(d) for d in l.output), f"{l.params:,}", f"{l.macs:,}", f"{l.flops:,}")
            + ((ms[i],) if ms else ()) for i, l in enumerate(cost.layers) if zero_rows or l.params or l.flops]
    return text_table(("layer", "op", "output CxHxW", "params", "MACs", "FLOPs") + (("pred. ms",) if ms else ()),
                      rows, align=["left", "left", "left", "right", "right", "right"] + (["right"] if ms else []))
