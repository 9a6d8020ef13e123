"""``couturier plan``: the tables and the PNG; bad input as one line, exit 2, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from couturier.cli import main
from couturier.cli._app import console


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(args)
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


def test_plan_prints_the_tables_and_writes_the_plot(
    results: Path,
    prices: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(console, "_width", 200)  # no wrapped cells
    png = tmp_path / "out" / "plan.png"
    code, out, _ = _run(
        [
            "plan", "--peak-rps", "1000", "--p99-ms", "55", "--utilization", "0.5",
            "--instance-type", "big.test", "--sagemaker-instance-type", "ml.test",
            "--prices", str(prices), "--results", str(results), "--plot", str(png),
        ],
        capsys,
    )  # fmt: skip
    assert code == 0
    # 1 vCPU replicas at 100 req/s, 50 each at 50%: 20 replicas; 3 per big.test node -> 8
    # nodes (7 + 1) at 0.30; 4 per ml.test instance -> 6 instances (5 + 1) at 0.15
    assert "production.json in_process" in out and "<- chosen" in out
    assert "8 x 0.3 = 240.00" in out
    assert "6 x 0.15 = 90.00" in out
    assert "256.00" in out  # EKS on-demand total: 240 + (0.10 + 0.06) x 100
    assert "break-even" in out and "SageMaker" in out
    assert "https://example.org/prices" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--p99-ms", "5"], "below every measured p99"),
        (["--peak-rps", "-5"], "is not a positive number"),
        (["--instance-type", "c9.huge"], "'c9.huge' is not in the price file"),
        (["--workload", "tabular", "--photos-per-listing", "3"], "does not apply"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    results: Path,
    prices: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    base = {
        "--peak-rps": "100",
        "--p99-ms": "55",
        "--prices": str(prices),
        "--results": str(results),
    }
    for flag, value in zip(args[::2], args[1::2], strict=True):
        base[flag] = value
    code, _, err = _run(["plan", *(x for kv in base.items() for x in kv)], capsys)
    assert code == 2
    assert message in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_a_missing_price_file_is_refused(
    results: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "none.yaml"
    code, _, err = _run(
        ["plan", "--peak-rps", "100", "--p99-ms", "55", "--prices", str(missing)], capsys
    )
    assert code == 2
    assert f"price file {missing} does not exist" in err
