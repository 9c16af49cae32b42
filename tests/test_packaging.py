"""Packaging: pip and conda get the same packages, the README's commands are the ones CI runs."""

from __future__ import annotations

import re
from pathlib import Path

import tomllib
import yaml

import poolviz

ROOT = Path(__file__).resolve().parent.parent
# Where conda-forge spells a package differently from PyPI.
CONDA_NAMES = {"psycopg2-binary": "psycopg2", "psycopg[binary]": "psycopg", "prometheus-client": "prometheus_client"}
SPEC = re.compile(r"^(?P<name>[A-Za-z0-9_.\-\[\]]+)\s*(?P<version>[<>=!~].*)?$")


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def split(spec: str) -> tuple[str, str]:
    match = SPEC.match(spec.replace(" ", ""))
    assert match, f"not a package spec: {spec!r}"
    return match["name"].lower(), match["version"] or ""


def test_core_depends_on_peewee_only() -> None:
    """Installing poolviz alone pulls in peewee and nothing else, pinned to a tested range."""
    assert [split(d)[0] for d in pyproject()["project"]["dependencies"]] == ["peewee"]
    assert split(pyproject()["project"]["dependencies"][0])[1] == ">=4.5,<4.6"


def test_environment_yml_is_well_formed_conda() -> None:
    """environment.yml has a name, channels, and dependencies that are specs or one pip list."""
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert isinstance(env["name"], str) and env["name"]
    assert env["channels"] and all(isinstance(c, str) for c in env["channels"])
    pip_sections = [d for d in env["dependencies"] if isinstance(d, dict)]
    assert len(pip_sections) == 1 and list(pip_sections[0]) == ["pip"]
    assert "pip" in [split(d)[0] for d in env["dependencies"] if isinstance(d, str)]
    for dep in env["dependencies"]:
        if isinstance(dep, str):
            assert not re.search(r"\[|==\d", dep), f"conda spec written pip-style: {dep!r}"


def test_conda_and_pip_get_the_same_packages() -> None:
    """Every package in pyproject (core and extras) is in environment.yml with the same versions."""
    project = pyproject()["project"]
    wanted: dict[str, str] = {}
    for spec in project["dependencies"] + [s for extra in project["optional-dependencies"].values() for s in extra]:
        name, version = split(spec)
        wanted[CONDA_NAMES.get(name, name)] = version
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = dict(split(d) for d in env["dependencies"] if isinstance(d, str))
    conda.pop("python")
    conda.pop("pip")
    assert conda == wanted


def test_extras_cover_the_user_s_fixed_packages() -> None:
    """The notebooks extra brings the five packages the project is built on."""
    notebooks = {split(s)[0] for s in pyproject()["project"]["optional-dependencies"]["notebooks"]}
    assert {"pandas", "matplotlib", "ipywidgets", "jupyterlab", "ipykernel"} <= notebooks
    assert "ipykernel" in notebooks
    ipykernel = next(s for s in pyproject()["project"]["optional-dependencies"]["notebooks"] if "ipykernel" in s)
    assert split(ipykernel)[1] == ">=7.0.1", "7.0.0 broke widget updates from threads"


def test_readme_first_screen_gives_the_two_commands() -> None:
    """The README's first screen shows the set-up-and-open command and the test command."""
    first_screen = "\n".join((ROOT / "README.md").read_text().splitlines()[:40])
    assert "make lab" in first_screen and "make test" in first_screen


def test_ci_runs_the_readme_test_command_with_servers_required() -> None:
    """.ci/run requires the servers and runs exactly the README's test command."""
    ci = (ROOT / ".ci" / "run").read_text()
    assert "POOLVIZ_REQUIRE_SERVERS=1" in ci
    assert ci.rstrip().splitlines()[-1] == "make test"


def test_public_api_is_small_and_sorted() -> None:
    """poolviz re-exports a short, sorted __all__, each name documented."""
    assert poolviz.__all__ == sorted(poolviz.__all__)
    for name in poolviz.__all__:
        obj = getattr(poolviz, name)
        if callable(obj) and obj.__module__.startswith("poolviz"):
            assert obj.__doc__, f"{name} has no docstring"


def test_importing_poolviz_pulls_in_no_heavy_packages() -> None:
    """The core imports peewee and the standard library only: pandas, matplotlib, ipywidgets wait until used."""
    import subprocess
    import sys

    heavy = ("pandas", "matplotlib", "ipywidgets", "opentelemetry", "prometheus_client", "flask")
    code = f"import sys, poolviz; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
