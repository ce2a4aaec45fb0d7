"""A tiny space for the search tests: trains in about a second per trial on a CPU.

`blowup=True` multiplies the activations by 1e76 before the classifier, so the loss is
not finite from the first step: a trial that fails, on purpose."""
import nasty
from nasty.space import space


@space(target=dict(input=(3, 64, 64), classes=100), proxy=dict(input=(1, 28, 28), classes=10),
       width_decision="width")
def tiny(t, net):
    width = t.choice("width", (8, 16, 24, 32))
    depth = t.int("depth", 1, 2)
    k = t.choice("kernel", (3, 5))
    blowup = t.choice("blowup", (False, True))
    c, h, w = net.input
    body = "\n".join(f"stage conv{k}x{k} c={width * 2 ** i} bn relu maxpool2x2" for i in range(depth))
    head = ("scale v=1e38 scale v=1e38 " if blowup else "") + "gap flatten fc c=classes"
    return nasty.parse(f"net tiny input {c}x{h}x{w} classes {net.classes}\n"
                       f"stem  conv3x3/2 c={width} bn relu\n{body}\nhead  {head}\n")
