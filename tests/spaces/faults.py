"""A tiny space whose `fault` decision makes a trial fail on purpose (tests/test_faults.py).

ok    : trains normally;
nan   : scales the activations by 1e76 before the classifier, so the loss is not finite;
raise, oom, kill : the proxy net is named fault_<mode>, which nasty.search.standalone's test hook
        (only with NASTY_FAULT_INJECT=1 in the Ray workers' environment) turns into an
        exception, a torch.OutOfMemoryError, or a SIGKILL of the worker, in the forward pass.
`width` 64 puts the target over a 20M-MAC budget: such samples must never train."""
import nasty
from nasty.space import space


@space(target=dict(input=(3, 64, 64), classes=100), proxy=dict(input=(1, 28, 28), classes=10))
def faults(t, net):
    width = t.choice("width", (8, 16, 64))
    fault = t.choice("fault", ("ok", "nan", "raise", "oom", "kill"))
    c, h, w = net.input
    name = f"fault_{fault}" if fault in ("raise", "oom", "kill") else "faults"
    head = ("scale v=1e38 scale v=1e38 " if fault == "nan" else "") + "gap flatten fc c=classes"
    return nasty.parse(f"net {name} input {c}x{h}x{w} classes {net.classes}\n"
                       f"stem  conv3x3/2 c={width} bn relu\n"
                       f"stage conv3x3 c={width} bn relu maxpool2x2\nhead  {head}\n")
