"""A benchmark space whose members all cost about the same to train (bench_ray.py):
a small CNN with a width that varies by a few channels, so every trial takes about as
long and the Ray overhead is measured against a steady amount of training."""
import nasty
from nasty.space import space


@space(target=dict(input=(1, 28, 28), classes=10), proxy=dict(input=(1, 28, 28), classes=10))
def steady_cnn(t, net):
    w = t.choice("width", (22, 24, 26))
    c, h, wd = net.input
    return nasty.parse(f"net steady input {c}x{h}x{wd} classes {net.classes}\n"
                       f"stem  conv3x3 c={w} bn relu\n"
                       f"stage conv3x3 c={2 * w} bn relu maxpool2x2\n"
                       f"stage conv3x3 c={4 * w} bn relu maxpool2x2\n"
                       "head  gap flatten fc c=classes\n")
