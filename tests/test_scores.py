"""Zero-cost scores (nasty/scores): each score against a value computed here by hand, with
explicit small matrices in numpy, on a tiny network whose weights are set by the test; NaN and
infinite scores rank last; the public nasty.score."""
import math

import numpy as np
import pytest
import torch
from torch import nn

import nasty
from nasty.scores import SCORES, Batch, Candidate, Scored, batch_of, evaluate, order, ranks
from nasty.scores.measures import JACOB_K

# the tiny network: x (N, 1, 1, 3) -> conv1x1 to 2 channels (+bias) -> ReLU -> flatten (6) -> fc to 2 (+bias)
W_CONV = np.array([0.7, -1.3])
B_CONV = np.array([0.2, -0.1])
W_FC = np.array([[0.5, -0.4, 0.3, 0.9, -0.6, 0.2],
                 [-0.8, 0.1, 0.6, -0.3, 0.4, 0.7]])
B_FC = np.array([0.05, -0.02])
X = np.array([[1.0, -0.5, 2.0],
              [-1.5, 0.3, 0.8],
              [0.4, 1.2, -0.9],
              [-0.2, -1.1, 0.6]])          # 4 images of 3 pixels
Y = np.array([0, 1, 1, 0])


def tiny_module():
    conv, fc = nn.Conv2d(1, 2, 1), nn.Linear(6, 2)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor(W_CONV, dtype=torch.float32).view(2, 1, 1, 1))
        conv.bias.copy_(torch.tensor(B_CONV, dtype=torch.float32))
        fc.weight.copy_(torch.tensor(W_FC, dtype=torch.float32))
        fc.bias.copy_(torch.tensor(B_FC, dtype=torch.float32))
    return nn.Sequential(conv, nn.ReLU(), nn.Flatten(), fc)


def tiny_candidate():
    x = torch.tensor(X, dtype=torch.float32).view(4, 1, 1, 3)
    c = Candidate(None, None, x, torch.tensor(Y), 2, 0)
    c._base = tiny_module()
    return c


def forward(x):
    """The tiny network in numpy: pre-activations (N, 2, 3), flattened hidden (N, 6), logits (N, 2)."""
    pre = W_CONV[None, :, None] * x[:, None, :] + B_CONV[None, :, None]
    h = np.maximum(pre, 0).reshape(len(x), 6)           # channel-major, as torch flattens (C, H, W)
    return pre, h, h @ W_FC.T + B_FC


def det3(m):
    return np.linalg.det(m)


def test_naswot_is_the_log_determinant_of_the_hamming_kernel():
    _, h, _ = forward(X)
    codes = (h > 0).astype(int)
    units = codes.shape[1]
    kernel = np.array([[units - int(np.sum(ci != cj)) for cj in codes] for ci in codes], dtype=float)
    # the determinant by cofactor expansion along the first row (4x4), each minor by numpy's 3x3
    det = sum((-1) ** j * kernel[0, j] * det3(np.delete(np.delete(kernel, 0, 0), j, 1)) for j in range(4))
    assert det > 0
    assert SCORES["naswot"].fn(tiny_candidate()) == pytest.approx(math.log(det), rel=1e-9)


def test_synflow_sums_theta_times_gradient_of_the_linearised_network():
    # all parameters made positive, an all-ones input: every pre-activation is positive
    wc, bc, wf, bf = np.abs(W_CONV), np.abs(B_CONV), np.abs(W_FC), np.abs(B_FC)
    h = np.repeat(wc + bc, 3)                            # (6,): channel c's 3 pixels
    # R = sum_o (wf h + bf)_o; dR/dwf[o, j] = h_j; dR/dwc[c] = sum over c's pixels j of sum_o wf[o, j] * 1
    fc_part = np.sum(wf * h[None, :])
    conv_part = sum(wc[c] * np.sum(wf[:, 3 * c:3 * c + 3]) for c in range(2))
    got = SCORES["synflow"].fn(tiny_candidate())
    assert got == pytest.approx(math.log(fc_part + conv_part), rel=1e-7)   # the weights were float32


def loss_gradients():
    """dL/dW_fc and dL/dw_conv of the mean cross-entropy, by the chain rule written out."""
    pre, h, logits = forward(X)
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    d_logits = (p - np.eye(2)[Y]) / len(X)
    d_wf = d_logits.T @ h
    d_h = (d_logits @ W_FC).reshape(len(X), 2, 3) * (pre > 0)
    d_wc = np.array([np.sum(d_h[:, c, :] * X) for c in range(2)])
    return d_wf, d_wc


def test_snip_and_grad_norm_from_the_loss_gradient():
    d_wf, d_wc = loss_gradients()
    snip = np.sum(np.abs(W_FC * d_wf)) + np.sum(np.abs(W_CONV * d_wc))
    grad_norm = math.sqrt(np.sum(d_wf ** 2)) + math.sqrt(np.sum(d_wc ** 2))
    assert SCORES["snip"].fn(tiny_candidate()) == pytest.approx(snip, rel=1e-5)
    assert SCORES["grad_norm"].fn(tiny_candidate()) == pytest.approx(grad_norm, rel=1e-5)


def test_jacob_cov_from_the_input_jacobians():
    pre, _, _ = forward(X)
    # d(sum of logits)/dx[n, p] = sum_c w_c * [pre[n, c, p] > 0] * sum_o W_fc[o, 3c + p]
    col = W_FC.sum(0).reshape(2, 3)
    jac = np.einsum("c,ncp,cp->np", W_CONV, (pre > 0).astype(float), col)
    mean = jac.mean(1, keepdims=True)
    cov = (jac - mean) @ (jac - mean).T
    corr = cov / np.sqrt(np.outer(np.diag(cov), np.diag(cov)))
    v = np.linalg.eigvalsh(corr)
    want = -np.sum(np.log(v + JACOB_K) + 1 / (v + JACOB_K))
    assert SCORES["jacob_cov"].fn(tiny_candidate()) == pytest.approx(want, rel=1e-4)


def tiny_genotype():
    return nasty.parse("net tiny input 1x8x8 classes 3\nstem conv3x3 c=4 bn relu\nstage conv3x3/2 c=8 bn relu\n"
                       "head gap flatten fc c=classes\n")


def test_params_and_macs_are_the_cost_models_and_the_modules():
    from torch.utils.flop_counter import FlopCounterMode
    g = tiny_genotype()
    x = torch.randn(6, 1, 8, 8)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    got = nasty.score(g, (x, y), which=("params", "macs"))
    m = nasty.build(g)
    assert got["params"] == sum(p.numel() for p in m.parameters()) == nasty.cost(g).params
    with FlopCounterMode(display=False) as fc:
        m.eval()(torch.zeros(1, 1, 8, 8))
    assert got["macs"] == fc.get_total_flops() // 2


def test_public_score_returns_a_float_or_a_dict_and_is_deterministic():
    g = tiny_genotype()
    x, y = torch.randn(8, 1, 8, 8), torch.arange(8) % 3
    one = nasty.score(g, (x, y), which="naswot")
    assert isinstance(one, float) and math.isfinite(one)
    every = nasty.score(g, (x, y))
    assert set(every) == set(SCORES) and every["naswot"] == one
    assert all(math.isfinite(v) for v in every.values())
    with pytest.raises(nasty.NastyError, match="unknown score 'naswt'.*did you mean 'naswot'"):
        nasty.score(g, (x, y), which="naswt")


def test_a_network_whose_output_ignores_its_input_ranks_last_with_a_note():
    from nasty.searchspaces.nb201mini import arch_genotype
    data = (torch.randint(0, 255, (16, 1, 28, 28), dtype=torch.uint8), torch.arange(16) % 10)
    batch = batch_of(data)
    dead = arch_genotype(("none",) * 6)                  # every cell outputs zero
    gs = [arch_genotype(("skip",) * 6), dead, arch_genotype(("conv3x3",) * 6)]
    scored = evaluate(gs, batch, ("naswot", "synflow", "jacob_cov", "params"))
    for w in ("naswot", "synflow", "jacob_cov"):
        assert scored[1].values[w] is None
        assert order(scored, w)[-1] == 1
    assert any("naswot" in n and "ranked last" in n for n in scored[1].notes)
    # a rank average with one missing score still puts the candidate last
    assert order(scored, ("naswot", "params"))[-1] == 1
    assert math.isnan(nasty.score(dead, data, which="naswot"))


def test_ranks_put_missing_and_non_finite_values_last():
    assert ranks([3.0, None, 5.0, float("nan"), 3.0, float("inf")]) == [2.5, 5.0, 1.0, 5.0, 2.5, 5.0]   # places 4-6
    scored = [Scored({"snip": 1.0, "params": 2.0}), Scored({"snip": 3.0, "params": 1.0}),
              Scored({"snip": None, "params": 9.0})]
    assert order(scored, "snip") == [1, 0, 2]
    assert order(scored, "params") == [2, 0, 1]
    assert order(scored, "snip,params") == [0, 1, 2]    # ranks (2, 2) and (1, 3) tie; the missing one last


def test_batch_of_a_dataset_is_seeded_training_images():
    from nasty.data import from_arrays
    rng = np.random.default_rng(0)
    ds = from_arrays(rng.integers(0, 255, (100, 1, 8, 8), dtype=np.uint8), np.arange(100) % 4)
    a, b = batch_of(ds, 16, seed=3), batch_of(ds, 16, seed=3)
    assert isinstance(a, Batch) and a.x.shape == (16, 1, 8, 8) and a.classes == 4
    assert torch.equal(a.x, b.x) and not torch.equal(a.x, batch_of(ds, 16, seed=4).x)
    with pytest.raises(nasty.NastyError, match="at least 2 images"):
        batch_of(ds, 1)
