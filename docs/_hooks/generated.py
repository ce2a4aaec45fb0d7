"""MkDocs hook: pages that are generated from the code, so that they cannot drift from it.

A page holds a marker comment and the hook replaces it with text computed at build time:

    <!-- generated: cli -->   the command-line reference, from nasty's own argparse parser
    <!-- generated: ops -->   the op reference, from the op registry (nasty/genotype/opref.py)
    <!-- generated: controllers -->  every controller's options and defaults (nasty.controllers)
    <!-- generated: zoo -->   every zoo network's params and MACs, from the analytic cost model
"""
from __future__ import annotations

import argparse
import re

MARKER = re.compile(r"<!-- generated: (\w+) -->")


def _usage(parser: argparse.ArgumentParser) -> str:
    return parser.format_usage().replace("usage: ", "", 1).strip()


def _options_table(parser: argparse.ArgumentParser) -> str:
    rows = ["| option | what it does |", "|---|---|"]
    for a in parser._actions:
        if isinstance(a, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        names = ", ".join(f"`{s}`" for s in a.option_strings) or f"`{a.metavar or a.dest}`"
        if a.option_strings and a.nargs != 0 and a.metavar:
            names += f" `{a.metavar}`"
        text = (a.help or "").replace("%(default)s", str(a.default)).replace("%%", "%")
        text = text.replace("|", "\\|").replace("\n", " ")
        rows.append(f"| {names} | {text} |")
    return "\n".join(rows)


def cli_reference() -> str:
    from nasty.cli import make_parser
    parser = make_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {c.dest: c.help for c in sub._choices_actions}
    out = [f"```\n{_usage(parser)}\n```", "", parser.description or "", ""]
    for name, p in sub.choices.items():
        out += [f"## `nasty {name}`", "", helps.get(name) or "", "", f"```\n{_usage(p)}\n```", ""]
        if p.description:
            out += [p.description, ""]
        # a command with subcommands of its own (nasty bench build/run, nasty data fetch...)
        inner = [a for a in p._actions if isinstance(a, argparse._SubParsersAction)]
        out += [_options_table(p), ""]
        for s in inner:
            for iname, ip in s.choices.items():
                out += [f"### `nasty {name} {iname}`", "", f"```\n{_usage(ip)}\n```", ""]
                if ip.description:
                    out += [ip.description, ""]
                out += [_options_table(ip), ""]
    return "\n".join(out)


def ops_reference() -> str:
    from nasty.genotype.opref import reference_markdown
    return reference_markdown()


def controllers_reference() -> str:
    from nasty.controllers import REGISTRY, user_options
    rows = ["| `--controller` | what it is | `--controller-options` (defaults) |", "|---|---|---|"]
    for name, cls in REGISTRY.items():
        doc = " ".join((cls.__doc__ or "").strip().split("\n\n")[0].split())
        opts = ", ".join(f"`{k}={v}`" for k, v in user_options(name).items()) or "-"
        rows.append(f"| `{name}` | {doc} | {opts} |")
    return "\n".join(rows) + "\n"


def zoo_reference() -> str:
    import nasty
    from nasty import zoo
    rows = ["| network | input | params | MACs |", "|---|---|---|---|"]
    for name in zoo.names():
        g = zoo.get(name)
        c = nasty.cost(g)
        rows.append(f"| `{name}` | {'x'.join(map(str, g.input))} | {c.params:,} | {c.macs:,} |")
    return "\n".join(rows) + "\n"


GENERATORS = {"cli": cli_reference, "ops": ops_reference, "controllers": controllers_reference,
              "zoo": zoo_reference}


def on_page_markdown(markdown, page, config, files):
    def fill(m):
        kind = m.group(1)
        if kind not in GENERATORS:
            raise ValueError(f"{page.file.src_path}: unknown generated section {kind!r}")
        return GENERATORS[kind]()
    return MARKER.sub(fill, markdown)
