"""The install: exactly one dlib package is chosen on every platform, prebuilt where it can be."""

from __future__ import annotations

import itertools
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def _dlib_requirements() -> list[Requirement]:
    deps = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    found = [Requirement(d) for d in deps if Requirement(d).name in ("dlib", "dlib-bin")]
    assert {r.name for r in found} == {"dlib", "dlib-bin"}
    return found


def _env(impl: str, version: str, platform: str, machine: str, release: str) -> dict[str, str]:
    return {
        "platform_python_implementation": impl,
        "implementation_name": impl.lower(),
        "implementation_version": version,
        "python_version": version,
        "python_full_version": f"{version}.0",
        "sys_platform": platform,
        "platform_machine": machine,
        "platform_release": release,
        "platform_system": "",
        "platform_version": "",
        "os_name": "nt" if platform == "win32" else "posix",
    }


def test_exactly_one_dlib_on_every_platform() -> None:
    reqs = _dlib_requirements()
    grid = itertools.product(
        ["CPython", "PyPy"],
        ["3.11", "3.12", "3.14", "3.15"],
        ["linux", "darwin", "win32"],
        ["x86_64", "aarch64", "arm64", "AMD64", "armv7l"],
        ["22.6.0", "23.4.0", "6.1.0"],
    )
    for impl, version, platform, machine, release in grid:
        env = _env(impl, version, platform, machine, release)
        chosen = [r.name for r in reqs if r.marker is None or r.marker.evaluate(env)]
        assert len(chosen) == 1, (env, chosen)


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        (("CPython", "3.11", "linux", "x86_64", "6.1.0"), "dlib-bin"),  # measured: identical
        (("CPython", "3.13", "linux", "aarch64", "6.1.0"), "dlib-bin"),
        (("CPython", "3.12", "darwin", "arm64", "23.4.0"), "dlib-bin"),  # macOS 14
        (("CPython", "3.12", "darwin", "arm64", "22.6.0"), "dlib"),  # macOS 13: no wheel
        (("CPython", "3.12", "darwin", "x86_64", "23.4.0"), "dlib"),  # Intel Mac: no wheel
        (("CPython", "3.11", "win32", "AMD64", "6.1.0"), "dlib-bin"),
        (("CPython", "3.15", "linux", "x86_64", "6.1.0"), "dlib"),  # no wheel yet
        (("PyPy", "3.11", "linux", "x86_64", "6.1.0"), "dlib"),
    ],
)
def test_prebuilt_dlib_exactly_where_its_wheels_exist(where, expected) -> None:
    env = _env(*where)
    chosen = [r for r in _dlib_requirements() if r.marker is not None and r.marker.evaluate(env)]
    assert [r.name for r in chosen] == [expected]
    assert str(chosen[0].specifier) == "==20.0.1"  # both sides are the same dlib release
