"""The `nasty` command: tables, JSON, export, and one-line errors (never a traceback)."""
import json

import pytest
import torch

from nasty.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_show_lenet5_reproduces_the_notes_table(capsys):
    """The course notes' LeNet-5 analysis (Quinton & Chin, slides 26-43): every row computed.

    Notes' rows: output volume, parameters, flops (MACs for conv/FC; f*f per output for pooling).
    The notes print the first pooling layer's flops as 4074; their own formula on the same slide,
    14*14*6*2*2, gives 4704 — a transposed digit. The tool is right: 4704.
    """
    code, out, _ = run(capsys, "show", "lenet5", "--json")
    assert code == 0
    d = json.loads(out)
    rows = [(l["op"], tuple(l["output"]), l["params"], l["flops"] if l["op"] in ("avgpool",) else l["macs"])
            for l in d["layers"] if l["op"] in ("conv", "avgpool", "flatten", "fc")]
    notes = [  # (op, output CHW, params, flops) from the notes' table
        ("conv", (6, 28, 28), 6 * (5 * 5 * 1 + 1), 117_600),       # "156", "117k"
        ("avgpool", (6, 14, 14), 0, 4_704),                       # printed "4074": a slip
        ("conv", (16, 10, 10), 16 * (5 * 5 * 6 + 1), 240_000),    # "2416", "240k"
        ("avgpool", (16, 5, 5), 0, 1_600),                        # "1.6k"
        ("flatten", (400,), 0, 0),
        ("fc", (120,), 48_120, 48_000),
        ("fc", (84,), 10_164, 10_080),                            # "10k"
        ("fc", (10,), 850, 840),
    ]
    assert rows == notes
    assert d["params"] == 61_706                                   # "~62k parameters"
    assert round(d["macs"] + d["pool_flops"], -4) == 420_000       # "~0.42 MFlop for one forward pass"


def test_show_table_text(capsys):
    code, out, _ = run(capsys, "show", "lenet5")
    assert code == 0
    assert "stem.conv" in out and "61,706" in out and " 6x28x28 " in out


def test_show_other_input_and_genotype_format(capsys, tmp_path):
    code, out, _ = run(capsys, "show", "resnet50", "--input", "3x128x128", "--json")
    assert code == 0 and json.loads(out)["input"] == [3, 128, 128]
    code, out, _ = run(capsys, "show", "resnet50", "--format", "genotype")
    f = tmp_path / "r.nasty"
    f.write_text(out)
    code, out2, _ = run(capsys, "show", str(f), "--json")
    assert code == 0 and json.loads(out2)["params"] == 25_557_032


@pytest.mark.parametrize("argv, words", [
    (["show", "resnet99"], ["unknown zoo network 'resnet99'", "Did you mean"]),
    (["show", "nope/x.nasty"], ["does not exist"]),
    (["show", "lenet5", "--input", "32x32"], ["--input must look like"]),
    (["build", "lenet5", "--export", "m.txt"], ["--export must end in .onnx or .pt2"]),
])
def test_errors_are_one_line(capsys, argv, words):
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("nasty: error: ") and "Traceback" not in err
    for w in words:
        assert w in err


def test_malformed_genotype_file_is_one_line(capsys, tmp_path):
    f = tmp_path / "bad.nasty"
    f.write_text("net bad input 3x32x32\nstem conv3x3 c=8\nstage conv3x3 c=8 <- x\n")
    code, _, err = run(capsys, "show", str(f))
    assert code == 2 and err.count("\n") == 1 and "line 3" in err


def test_build_export_pt2_and_ref_weights(capsys, tmp_path):
    import torchvision
    ref = torchvision.models.resnet18(weights=None)
    wfile = tmp_path / "resnet18.pth"
    torch.save(ref.state_dict(), wfile)
    out_pt = tmp_path / "ours.pt"
    code, out, err = run(capsys, "build", "resnet18", "--ref-weights", str(wfile), "--save", str(out_pt))
    assert code == 0, err
    import nasty
    model = nasty.build("resnet18").eval()
    model.load_state_dict(torch.load(out_pt, weights_only=True))
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        assert (model(x) - ref.eval()(x)).abs().max() <= 1e-4
    code, out, err = run(capsys, "build", "lenet5", "--export", str(tmp_path / "m.pt2"))
    assert code == 0 and (tmp_path / "m.pt2").exists()


def test_ref_weights_refuse_pickled_code(capsys, tmp_path):
    import pickle

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))
    f = tmp_path / "evil.pth"
    f.write_bytes(pickle.dumps({"w": Evil()}))
    code, out, err = run(capsys, "build", "resnet18", "--ref-weights", str(f))
    assert code == 2 and "pwned" not in out and err.count("\n") == 1


def test_zoo_json_without_checks(capsys):
    code, out, _ = run(capsys, "zoo", "--json", "--no-check", "lenet5", "resnet50")
    rows = json.loads(out)
    assert [r["name"] for r in rows] == ["lenet5", "resnet50"]
    assert rows[1]["params"] == 25_557_032 and rows[1]["matches_reference"] == "not checked"


def test_zoo_reference_column_is_computed(capsys):
    code, out, _ = run(capsys, "zoo", "--json", "resnet18", "lenet5")
    rows = {r["name"]: r for r in json.loads(out)}
    assert rows["resnet18"]["matches_reference"].startswith("yes")
    assert rows["lenet5"]["matches_reference"] == "-"


def test_an_unknown_option_shows_the_subcommands_usage(capsys):
    import pytest as _pytest
    with _pytest.raises(SystemExit) as e:
        main(["search", "--space", "nasnet", "--bogus", "1"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.startswith("usage: nasty search") and "unrecognized arguments: --bogus 1" in err
