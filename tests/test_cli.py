"""The command line: generate writes real IDX; bad arguments give one clear line."""

import subprocess
import sys

import numpy as np
import pytest

from encchain.cli import main, parse_set
from encchain.idx import read_idx


def test_generate_writes_idx(tmp_path, capsys):
    out = tmp_path / "sub" / "original.idx3-ubyte.gz"
    assert main(["generate", "--preset", "unimodal", "--n", "500", "--seed", "0", "--out", str(out)]) == 0
    images = read_idx(out)
    assert images.shape == (500, 24, 24) and images.dtype == np.uint8
    assert "500 grids" in capsys.readouterr().out


def test_generate_axis_overrides(tmp_path):
    out = tmp_path / "u.idx"
    assert main(["generate", "--n", "300", "--py", "uniform", "--px", "0.9", "--height", "16",
                 "--width", "20", "--out", str(out)]) == 0
    assert read_idx(out).shape == (300, 16, 20)


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["generate", "--n", "-3", "--out", "x"], "positive integer"),
        (["generate", "--py", "1.4", "--out", "x"], "probability"),
        (["generate", "--blob", "4", "--out", "x"], "odd"),
        (["generate", "--preset", "trimodal", "--out", "x"], "invalid choice"),
        (["chain", "--out", "x", "--set", "kl_weight=-1"], "kl_weight"),
        (["chain", "--out", "x", "--set", "lambda=0.3"], "unknown field 'lambda'"),
        (["report", "no/such/run"], "no such run folder"),
    ],
)
def test_bad_arguments_one_clear_line(tmp_path, monkeypatch, capsys, argv, fragment):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as info:
        code = main(argv)
        raise SystemExit(code)
    assert info.value.code != 0
    err = capsys.readouterr().err.strip()
    assert fragment in err and len(err.splitlines()) == 1, err


def test_parse_set_types():
    got = parse_set(["kl_weight=0.3", "generations=7", "regime=mix", "grid=bimodal", "start=none"])
    assert got["kl_weight"] == 0.3 and got["generations"] == 7 and got["regime"] == "mix"
    assert len(got["grid"].modes) == 2 and got["start"] is None
    with pytest.raises(ValueError, match="expected int"):
        parse_set(["generations=many"])


def test_module_entry_point_help():
    out = subprocess.run([sys.executable, "-m", "encchain", "chain", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    for option in ("--preset", "--out", "--quick", "--set"):
        assert option in out.stdout


def test_chain_command_runs_and_resumes(tmp_path, capsys):
    args = ["chain", "--preset", "fc1", "--quick", "--out", str(tmp_path / "r"), "--quiet",
            "--set", "n_samples=100", "--set", "generations=2", "--set", "epochs=1"]
    assert main(args) == 0
    assert "2 models finished" in capsys.readouterr().out
    assert main(args) == 0  # already complete: nothing to do
    assert "0 models finished" in capsys.readouterr().out


def test_report_command_writes_csv_and_figures(tmp_path, capsys):
    run_dir = tmp_path / "r"
    assert main(["chain", "--preset", "fc1", "--quick", "--out", str(run_dir), "--quiet",
                 "--set", "n_samples=150", "--set", "generations=2", "--set", "epochs=1"]) == 0
    capsys.readouterr()
    assert main(["report", str(run_dir), "--quiet", "--pr-samples", "100"]) == 0
    out = capsys.readouterr().out
    assert "0 (original)" in out and "validity" in out
    report = run_dir / "report"
    names = {p.name for p in report.iterdir()}
    assert {"metrics.csv", "variability.png", "occupancy.png", "ground_truth.png", "marginals_last.png"} <= names
    rows = (report / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("generation") and len(rows) == 1 + 3  # header + generations 0..2
    assert (report / "variability.png").read_bytes()[:4] == b"\x89PNG"
