"""FractalNet for CIFAR, C=4 columns and B=5 blocks (fractalnet.nasty): no reference
implementation. The join structure is checked against an independent re-implementation of
the authors' Caffe generator (gustavla/fractalnet, generation/fractalnet.py), run on the
compiled network's own conv and BN layers; the rest against the paper's structure."""
import pytest
import torch
import torch.nn.functional as F

import nasty
from nasty.genotype import elaborate, format, parse
from nasty.weights import execution_order
from zoo_check import check_self_consistent, randomize_norms
from zoo_notes import check_round_trips

C, B = 4, 5
WIDTHS = (64, 128, 256, 512, 512)


def generator_forward(units, x, columns=C, blocks=B):
    """The authors' generator: row l of 2^(C-1); column c (0 = shallowest) convolves when
    (l+1) % 2^(C-1-c) == 0, deepest first; after the last row every column is max-pooled;
    then the join rule `l % 2^(2+c) == 2^(1+c) - 1` averages the deepest 2+c columns."""
    units = iter(units)
    for _ in range(blocks):
        lasts = [x] * columns
        rows = 2 ** (columns - 1)
        for l in range(rows):
            for c in reversed(range(columns)):
                if (l + 1) % 2 ** (columns - 1 - c) == 0:
                    lasts[c] = next(units)(lasts[c])
            if l == rows - 1:
                lasts = [F.max_pool2d(t, 2) for t in lasts]
            for c in range(columns):
                if l % 2 ** (2 + c) == 2 ** (1 + c) - 1:
                    n = 2 + c
                    joined = torch.stack(lasts[-n:]).mean(0)
                    lasts[columns - n:] = [joined] * n
                    break
        x = lasts[0]
    return x


def test_joins_match_the_authors_generator():
    # The join structure does not depend on the widths: check it on a narrow copy (fast).
    g = nasty.zoo.get("fractalnet").with_header(lets={"w1": 8, "w2": 8, "w3": 16, "w4": 16, "w5": 16})
    torch.manual_seed(0)
    model = randomize_norms(nasty.build(g)).eval()
    layers = [m for _, m in execution_order(model, g.input)]
    convs = [m for m in layers if isinstance(m, torch.nn.Conv2d)]
    bns = [m for m in layers if isinstance(m, torch.nn.BatchNorm2d)]
    fc = [m for m in layers if isinstance(m, torch.nn.Linear)]
    assert len(convs) == len(bns) == B * (2 ** C - 1) == 75 and len(fc) == 1
    units = [lambda t, cv=cv, bn=bn: F.relu(bn(cv(t))) for cv, bn in zip(convs, bns)]
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        want = fc[0](generator_forward(units, x).flatten(1))
        got = model(x)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_structure_and_parameters():
    g = nasty.zoo.get("fractalnet")
    c = check_self_consistent(g)
    assert parse(format(g)) == g
    prog = elaborate(g)
    # Longest and shortest conv paths: B * 2^(C-1) = 40 and B = 5.
    longest, shortest = {-1: 0}, {-1: 0}
    for i, s in enumerate(prog.steps):
        own = s.kind == "conv"
        longest[i] = max(longest[h] for h in s.inputs) + own
        shortest[i] = min(shortest[h] for h in s.inputs) + own
    assert longest[prog.output] == B * 2 ** (C - 1) == 40
    assert shortest[prog.output] == B
    # Joins are means: add then scale by 1/n, with 2, 3, 2 and 4 columns in each block.
    scales = [s.attrs["v"] for s in prog.steps if s.kind == "scale"]
    assert scales == [1 / 2, 1 / 3, 1 / 2, 1 / 4] * B
    adds = [len(s.inputs) for s in prog.steps if s.kind == "add"]
    assert adds == [2, 3, 2, 4] * B
    # 32x32 halves five times to 1x1; the classifier sees 512 features.
    assert [s.out[1] for s in prog.steps if s.kind == "maxpool"][::4] == [16, 8, 4, 2, 1]
    # Parameters by hand: per block, C convs read the block input and 2^C - 1 - C read c channels;
    # conv biases, BN without affine parameters (Caffe's BatchNorm), and the linear classifier.
    cin, want = 3, 0
    for w in WIDTHS:
        want += C * (9 * cin * w + w) + (2 ** C - 1 - C) * (9 * w * w + w)
        cin = w
    want += 512 * 10 + 10
    assert c.params == want == 76_084_554
    drops = sorted({round(s.attrs["p"], 6) for s in prog.steps if s.kind == "dropout"})
    assert drops == [0.0, 0.1, 0.2, 0.3, 0.4]


@pytest.mark.parametrize("name", ["fractalnet"])
def test_round_trips(name):
    check_round_trips(name)
