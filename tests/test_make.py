"""The Makefile as a newcomer meets it: `make` lists the targets, `make run` installs little."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def make(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run make in the repository, as a user would from a shell (not as a sub-make)."""
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _phony_targets() -> set[str]:
    """Every target the Makefile declares .PHONY: the commands people run."""
    text = (ROOT / "Makefile").read_text().replace("\\\n", " ")
    declared = re.findall(r"^\.PHONY:(.*)$", text, flags=re.MULTILINE)
    return {name for line in declared for name in line.split()}


def test_make_alone_lists_every_target_with_its_text() -> None:
    alone, help_ = make(), make("help")
    assert alone.returncode == help_.returncode == 0, alone.stderr + help_.stderr
    assert alone.stdout == help_.stdout  # help is the default goal: `make` builds nothing
    assert alone.stdout.startswith("usage: make <target>")
    listed = {}
    for line in alone.stdout.splitlines()[2:]:
        name, _, text = line.strip().partition(" ")
        listed[name] = text.strip()
    missing = _phony_targets() - set(listed)
    assert not missing, f"targets without a ## line: {sorted(missing)}"
    assert all(listed.values()), listed
    assert "$" not in alone.stdout  # no unexpanded make variables in the texts


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_make_run_installs_the_runtime_lock_and_no_dev_tool(tmp_path: Path) -> None:
    """`make run`'s install step, into a fresh venv: exactly requirements.lock + the package.

    Downloads the runtime lock (about 50 s on a busy 2-core machine with a cold pip cache).
    """
    venv = tmp_path / "venv"
    started = time.monotonic()
    done = make("install-runtime", f"VENV={venv}", f"PYTHON={sys.executable}", timeout=540)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    steps = [line for line in done.stdout.splitlines() if line.startswith("==>")]
    assert steps == [
        f"==> creating {venv}",
        "==> installing runtime dependencies (requirements.lock)",
    ]
    print(f"\nmake install-runtime into a fresh venv: {time.monotonic() - started:.0f} s")

    listing = subprocess.run(
        [str(venv / "bin" / "python"), "-c", LIST_DISTRIBUTIONS],
        capture_output=True,
        text=True,
        check=True,
    )
    installed = set(listing.stdout.split())
    locked = {_normalise(m) for m in re.findall(r"^([A-Za-z0-9._-]+)==", _lock(), re.MULTILINE)}
    # What venv itself puts in (pip; setuptools on Python < 3.12) is not ours to count.
    assert installed - {"pip", "setuptools"} == locked | {"flipkart-api"}
    assert not {"pytest", "ruff", "mypy"} & installed
    assert (venv / ".installed-runtime").exists()
    assert not (venv / ".installed").exists()  # the dev stamp: `make test` adds the dev lock
    # The lock is complete (make installs it with --no-deps): every requirement is satisfied.
    check = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "check"], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    version = subprocess.run(
        [str(venv / "bin" / "flipkart-api"), "--version"], capture_output=True, text=True
    )
    assert version.returncode == 0, version.stderr


LIST_DISTRIBUTIONS = """
import importlib.metadata as m, re
for d in m.distributions():
    print(re.sub(r"[-_.]+", "-", d.metadata["Name"]).lower())
"""


def _lock() -> str:
    return (ROOT / "requirements.lock").read_text()


def _normalise(name: str) -> str:
    """PEP 503 name normalisation, as pip compares names."""
    return re.sub(r"[-_.]+", "-", name).lower()
