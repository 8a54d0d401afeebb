"""The package list in pyproject.toml covers the source tree, and the
presets/ and conversion/ folders install as keras_pose.presets and
keras_pose.conversion."""

import importlib
import pathlib
import tomllib

from conftest import REPO_ROOT


def _pyproject():
    with open(REPO_ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)


def test_every_source_package_is_listed():
    setuptools_cfg = _pyproject()["tool"]["setuptools"]
    listed = set(setuptools_cfg["packages"])
    found = set()
    for init in (REPO_ROOT / "keras_pose").rglob("__init__.py"):
        rel = init.parent.relative_to(REPO_ROOT)
        found.add(".".join(rel.parts))
    found |= {"keras_pose.presets", "keras_pose.conversion"}
    assert found == listed, (
        f"pyproject.toml [tool.setuptools] packages is out of date: "
        f"missing {sorted(found - listed)}, stale {sorted(listed - found)}"
    )


def test_presets_and_conversion_are_mapped_into_the_package():
    package_dir = _pyproject()["tool"]["setuptools"]["package-dir"]
    assert package_dir["keras_pose.presets"] == "presets"
    assert package_dir["keras_pose.conversion"] == "conversion"
    for name, folder in (("keras_pose.presets", "presets"), ("keras_pose.conversion", "conversion")):
        module = importlib.import_module(name)
        assert pathlib.Path(module.__file__).parent == REPO_ROOT / folder
