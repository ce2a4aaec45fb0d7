"""The sizes a genotype may have. Anything larger is refused up front with a one-line error.

Without limits a hostile or mistyped genotype could hang nasty (`x 100000000`), exhaust memory
(`c=1000000000000`) or overflow Python's stack (2,000 nested parentheses). Every limit is far
above what the zoo needs (its largest figure is in the comment) and is listed in the README's
Limits section, which a test keeps in step with this file.

The nesting limits are small on purpose. The parser, the checks and the elaborator recurse once
per level, and a value (up to MAX_VALUE_DEPTH) is evaluated inside node expressions (up to
MAX_EXPR_DEPTH) inside cells calling cells (up to MAX_CELL_DEPTH): together they stay well
inside Python's default stack of 1,000 frames. And every add/cat/mul level puts a number in a
layer's module path (`stage1.out.0.0.relu`), which torch.fx's generated code reaches through one
nested getattr() each: Python parses at most 200 nested parentheses, so MAX_EXPR_DEPTH *
MAX_CELL_DEPTH stays below that.
"""
from __future__ import annotations

MAX_TEXT = 1_000_000        # characters of a genotype text or JSON document (zoo: 2,126)
MAX_TOKEN = 256             # characters of one name or number (zoo: 20)
MAX_VALUE_TOKENS = 256      # tokens of one value expression (zoo: 17)
MAX_VALUE_DEPTH = 50        # nesting of a value: operators, calls, parentheses, signs (zoo: 7)
MAX_EXPR_DEPTH = 16         # nesting of a node expression: `<-` and add/cat/mul (zoo: 3)
MAX_CELL_DEPTH = 8          # cells calling cells calling cells... (zoo: 3)
MAX_LETS = 1_000            # `let` names of a genotype (zoo: 14)
MAX_CELLS = 1_000           # cells of a genotype (zoo: 10)
MAX_NODES = 1_000           # nodes of one cell (zoo: 19)
MAX_PARAMS = 64             # parameters of one cell (zoo: 6)
MAX_INT = 2 ** 63 - 1       # magnitude of an integer in a value (a 64-bit integer); floats: finite
MAX_REPEAT = 10_000         # `x N` of one body line (zoo: 64)
MAX_LAYERS = 100_000        # layers after expanding repeats and cells: ops, cell nodes and arguments,
                            # replayed layers each count one, so elaboration's work is bounded (zoo: 1,588)
MAX_CHANNELS = 1_000_000    # channels of any feature map or fc layer, classes, input channels (zoo: 18,432)
MAX_SIZE = 65_536           # height and width of the input and of every feature map (zoo: 600; JPEG's
                            # own limit is 65,535): padding and upsampling could grow a map past any input

README = "see Limits in the README"


def over(what: str, value, limit: int) -> str:
    """The one message every limit uses: what, the value, the limit."""
    v = f"{value:,}" if isinstance(value, int) else str(value)
    return f"{what} {v} is over the limit of {limit:,} ({README})"


def input_problem(shape) -> str | None:
    """What is wrong with an input shape CxHxW, or None."""
    if (not isinstance(shape, (tuple, list)) or len(shape) != 3
            or any(type(d) is not int or d < 1 for d in shape)):
        return f"input must be three positive integers CxHxW, got {shape!r}"
    if shape[0] > MAX_CHANNELS:
        return over("input channels", shape[0], MAX_CHANNELS)
    for d in shape[1:]:
        if d > MAX_SIZE:
            return over("input size", d, MAX_SIZE)
    return None


def classes_problem(classes) -> str | None:
    """What is wrong with a class count, or None (None itself is allowed: no classes given)."""
    if classes is None:
        return None
    if type(classes) is not int or classes < 1:
        return f"classes must be a positive whole number such as 1000, got {classes!r}"
    if classes > MAX_CHANNELS:
        return over("classes", classes, MAX_CHANNELS)
    return None
