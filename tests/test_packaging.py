"""The package list in pyproject.toml covers the source tree, and the
presets/ and conversion/ folders install as keras_pose.presets and
keras_pose.conversion."""

import importlib
import pathlib
import tomllib

from pose_testing.paths import REPO_ROOT


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


def test_licence_is_an_spdx_string_and_the_sample_image_is_package_data():
    pyproject = _pyproject()
    # A table ({text = ...}) makes setuptools >= 77 warn on every install.
    assert pyproject["project"]["license"] == "Apache-2.0"
    assert any(r.replace(" ", "").startswith("setuptools>=77") for r in pyproject["build-system"]["requires"])
    data = pyproject["tool"]["setuptools"]["package-data"]["keras_pose.assets"]
    assets = REPO_ROOT / "keras_pose" / "assets"
    shipped = {p.name for pattern in data for p in assets.glob(pattern)}
    assert {"000000000785.jpg", "ATTRIBUTION.md"} <= shipped
    attribution = (assets / "ATTRIBUTION.md").read_text()
    assert "CC BY 2.0" in attribution and "http://images.cocodataset.org/val2017/000000000785.jpg" in attribution
