"""The installed distribution's metadata: one version (``fastact.__version__`` is the distribution's), and
the fields a package index shows (license, classifiers, URLs, requires-python, the numpy dependency)."""

import re
import sys
from importlib import metadata
from pathlib import Path

import pytest

import fastact

# PEP 440, public versions (the canonical form, which is what a build backend writes into METADATA)
PEP440 = re.compile(r"^\d+(\.\d+)*((a|b|rc)\d+)?(\.post\d+)?(\.dev\d+)?$")


@pytest.fixture(scope="module")
def meta():
    return metadata.metadata("fastact")


def test_version_is_the_distributions():
    assert fastact.__version__ == metadata.version("fastact")


def test_version_is_pep440():
    assert PEP440.match(fastact.__version__), fastact.__version__


def test_requires_python_admits_this_interpreter(meta):
    spec = meta["Requires-Python"]
    assert spec, "Requires-Python is missing"
    m = re.fullmatch(r">=\s*3\.(\d+)", spec.strip())
    assert m, f"Requires-Python {spec!r}: expected a plain '>=3.N'"
    assert sys.version_info[:2] >= (3, int(m.group(1)))


def test_license(meta):
    assert meta["License-Expression"] or meta["License"], "no License-Expression nor License field"


def test_classifiers(meta):
    classifiers = meta.get_all("Classifier") or []
    assert "Programming Language :: Python :: 3" in classifiers
    assert any(c.startswith("Operating System ::") for c in classifiers)
    assert "Typing :: Typed" in classifiers
    # a version classifier, when present, names this interpreter too (the wheels are built for each)
    versions = [c.rsplit(" :: ", 1)[1] for c in classifiers if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)]
    if versions:
        assert f"{sys.version_info[0]}.{sys.version_info[1]}" in versions, versions


def test_project_urls(meta):
    urls = dict(u.split(", ", 1) for u in meta.get_all("Project-URL") or [])
    assert {"Homepage", "Source", "Issues"} <= set(urls), urls
    assert all(u.startswith("https://") for u in urls.values()), urls


def test_numpy_dependency_and_test_extra(meta):
    requires = meta.get_all("Requires-Dist") or []
    assert any(re.match(r"numpy\s*>=", r) for r in requires), requires
    assert "test" in (meta.get_all("Provides-Extra") or [])


def test_package_ships_its_types():
    package = Path(fastact.__file__).parent
    assert (package / "py.typed").is_file()
    assert (package / "__init__.pyi").is_file()
