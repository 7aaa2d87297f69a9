"""The public surface: ``__all__`` is sorted and lists exactly the public names."""

from __future__ import annotations

import types

import pytest

import chuizi_async
import chuizi_async.testing

PACKAGES = [chuizi_async, chuizi_async.testing]


def public_names(module: types.ModuleType) -> set[str]:
    """Names a user would see: no private ones, no submodules, no ``__future__`` features."""
    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and name != "annotations"  # from __future__ import annotations
    }


def test_package_all_is_sorted() -> None:
    assert chuizi_async.__all__ == sorted(chuizi_async.__all__)


def test_testing_all_is_sorted() -> None:
    assert chuizi_async.testing.__all__ == sorted(chuizi_async.testing.__all__)


@pytest.mark.parametrize("module", PACKAGES, ids=lambda m: m.__name__)
def test_all_has_no_duplicates(module: types.ModuleType) -> None:
    assert len(module.__all__) == len(set(module.__all__))


@pytest.mark.parametrize("module", PACKAGES, ids=lambda m: m.__name__)
def test_all_lists_exactly_the_public_names(module: types.ModuleType) -> None:
    assert set(module.__all__) == public_names(module)


@pytest.mark.parametrize("module", PACKAGES, ids=lambda m: m.__name__)
def test_every_entry_of_all_is_importable(module: types.ModuleType) -> None:
    namespace: dict[str, object] = {}
    exec(f"from {module.__name__} import *", namespace)
    missing = [name for name in module.__all__ if name not in namespace]
    assert missing == []
    for name in module.__all__:
        assert namespace[name] is getattr(module, name)


def test_package_has_a_version() -> None:
    assert isinstance(chuizi_async.__version__, str)
    assert chuizi_async.__version__
