"""The platform installs and runs without the heavy extras (torch, LightGBM, FAISS, Dagster),
and what needs one fails with the pip command that installs it."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from couturier.errors import MissingExtraError
from couturier.extras import require

#: A Python process in which the heavy extras cannot be imported, as if never installed.
_WITHOUT_EXTRAS = textwrap.dedent(
    """
    import sys

    class Uninstalled:
        def find_spec(self, name, path=None, target=None):
            top = name.split(".")[0]
            if top in {"torch", "lightgbm", "faiss", "onnxmltools", "dagster", "ray"}:
                raise ModuleNotFoundError(f"No module named {name!r}")
            return None

    sys.meta_path.insert(0, Uninstalled())
    """
)


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _WITHOUT_EXTRAS + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_platform_imports_and_runs_without_the_extras() -> None:
    done = _run(
        """
        import couturier.cli, couturier.features, couturier.registry, couturier.serving
        import couturier.retrieval, couturier.marketplace, couturier.evaluation
        from couturier.cli import main
        from couturier.domain import load_domains
        assert "authentication" in load_domains()       # discovering a domain costs nothing
        try:
            main(["scenarios"])
        except SystemExit as exit:
            assert exit.code in (0, None), exit.code
        print("platform ok")
        """
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "platform ok" in done.stdout


def test_a_missing_extra_fails_with_its_install_command() -> None:
    done = _run(
        """
        import numpy as np
        from couturier.errors import MissingExtraError
        from couturier.retrieval import VectorIndex
        index = VectorIndex(dim=4)
        index.add([1], np.ones((1, 4), np.float32))
        try:
            index.search(np.ones((1, 4), np.float32))
        except MissingExtraError as exc:
            print(exc.message)
        from couturier.domain import load_domains
        try:
            load_domains()["authentication"].recipe(None, None, None)
        except MissingExtraError as exc:
            print(exc.message)
        try:
            import couturier.serving.ray_tier
        except MissingExtraError as exc:
            print(exc.message)
        """
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert "pip install 'couturier[retrieval]'" in lines[0] and "'faiss'" in lines[0]
    assert "pip install 'couturier[authentication]'" in lines[1] and "'torch'" in lines[1]
    assert "pip install 'couturier[tier]'" in lines[2] and "'ray.serve'" in lines[2]


def test_require_returns_an_installed_module_and_names_the_extra_otherwise() -> None:
    assert require("json", extra="x", purpose="parsing").dumps([]) == "[]"
    with pytest.raises(MissingExtraError) as err:
        require("couturier_no_such_module", extra="pricing", purpose="price suggestions")
    assert err.value.extra == "pricing" and "couturier[pricing]" in err.value.message
