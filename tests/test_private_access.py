"""No module reads another object's private attribute (``x._name`` where x is not self/cls).

Like ``test_exports.py`` for the public surface: a walk over the package's syntax trees
(``chuizi_async/``, ``_cli/`` and ``testing/`` included). A private name (one leading
underscore, not a dunder) is read only through ``self``, ``cls`` or ``super()``;
``getattr(x, "_name")`` and its kin count too, and so does ``from .mod import _name`` (a
private module, ``from . import _mod``, is fine: it is the package's own). Each exception is
listed below with why, by file and expression (not line): a moved line stays allowed, a new
one fails, and an entry no longer needed fails too.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import chuizi_async

PACKAGE = Path(chuizi_async.__file__).parent
ROOT = PACKAGE.parent

# Allowed for good: none of them is another object's state.
ALLOWED = {
    # the standard library's name for "exit now, skip cleanup" (a second Ctrl-C)
    ("chuizi_async/_cli/_batch_run.py", "os._exit"),
}

_REFLECTION = {"getattr", "setattr", "hasattr", "delattr"}

# A named tuple's public methods begin with an underscore so as not to clash with its fields
# (the standard library documents them: ``collections.namedtuple``).
_NAMEDTUPLE_API = {"_replace", "_asdict", "_make", "_fields", "_field_defaults"}


def _private(name: str) -> bool:
    if name in _NAMEDTUPLE_API:
        return False
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _own(value: ast.expr) -> bool:
    """``self``, ``cls`` or ``super()``: the object's own attributes."""
    if isinstance(value, ast.Name):
        return value.id in ("self", "cls")
    return isinstance(value, ast.Call) and ast.unparse(value.func) == "super"


def _is_module(path: Path, node: ast.ImportFrom, name: str) -> bool:
    """Whether ``from <node.module> import name`` in ``path`` names a module of the package."""
    if node.level == 0:
        return False  # only the package's own modules may be private-named
    base = path.parent
    for _ in range(node.level - 1):
        base = base.parent
    for part in (node.module or "").split(".") if node.module else ():
        base = base / part
    return (base / f"{name}.py").exists() or (base / name / "__init__.py").exists()


def own_private_names(tree: ast.AST) -> set[str]:
    """The private attributes of the classes ``tree`` defines: their ``__slots__``, what their
    methods set on ``self``/``cls``, and their own methods and class attributes. A module may
    read these on any object of its own classes (privacy is the module's, as in Python)."""
    names: set[str] = set()
    for cls in (n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)):
        for item in cls.body:
            if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                names.add(item.name)
            targets = item.targets if isinstance(item, ast.Assign) else []
            if isinstance(item, ast.AnnAssign):
                targets = [item.target]
            for target in targets:
                if isinstance(target, ast.Name):
                    names.add(target.id)
                    value = getattr(item, "value", None)
                    if target.id == "__slots__" and isinstance(value, (ast.Tuple, ast.List)):
                        names.update(
                            e.value
                            for e in value.elts
                            if isinstance(e, ast.Constant) and isinstance(e.value, str)
                        )
        for node in ast.walk(cls):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.ctx, ast.Store)
                and _own(node.value)
            ):
                names.add(node.attr)
    return {name for name in names if _private(name)}


def private_reads(tree: ast.AST, path: Path | None = None) -> Iterator[tuple[int, str]]:
    """(line, expression) of every read of another module's private attribute in ``tree``."""
    own = own_private_names(tree)
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and _private(node.attr)
            and not _own(node.value)
            and node.attr not in own
        ):
            yield node.lineno, ast.unparse(node)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in _REFLECTION
            and len(node.args) >= 2
            and isinstance(name := node.args[1], ast.Constant)
            and isinstance(name.value, str)
            and _private(name.value)
            and not _own(node.args[0])
            and name.value not in own
        ):
            yield node.lineno, f"{ast.unparse(node.args[0])}.{name.value}"
        elif isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if _private(alias.name) and not (path and _is_module(path, node, alias.name)):
                    where = "." * node.level + (node.module or "")
                    yield node.lineno, f"from {where} import {alias.name}"


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _reads() -> list[tuple[str, int, str]]:
    found = []
    for path in _modules():
        where = path.relative_to(ROOT).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        found += sorted((where, line, expr) for line, expr in private_reads(tree, path))
    return found


def test_no_module_reads_another_objects_private_attribute() -> None:
    allowed = ALLOWED
    offending = [
        f"{path}:{line} {expr}" for path, line, expr in _reads() if (path, expr) not in allowed
    ]
    assert not offending, "private attributes read from outside their object:\n" + "\n".join(
        offending
    )


def test_every_allowed_private_read_is_still_needed() -> None:
    seen = {(path, expr) for path, _, expr in _reads()}
    stale = sorted((ALLOWED) - seen)
    assert not stale, "allowed but no longer found (remove from the list):\n" + "\n".join(
        f"{path} {expr}" for path, expr in stale
    )


def test_the_walk_finds_every_kind_of_private_read() -> None:
    source = """
from ._models import _decimal, GenerationRequest
from . import _clock

class C:
    __slots__ = ("_slot",)

    def _helper(self) -> None:
        self._set_here = 1

    def m(self, other):
        other._slot, other._helper(), other._set_here
        self._own, cls._own, super()._own, self.__dict__, other.public
        other._replace(a=1), other._asdict(), other._fields  # a named tuple's public API
        other._theirs
        self.part._deep
        getattr(other, "_reflected")
        getattr(self, "_mine")
"""
    found = [expr for _, expr in private_reads(ast.parse(source), PACKAGE / "_cost.py")]
    assert sorted(found) == [
        "from ._models import _decimal",
        "other._reflected",
        "other._theirs",
        "self.part._deep",
    ]


def test_the_walk_covers_the_cli_and_the_simulator() -> None:
    names = {p.relative_to(PACKAGE).parts[0] for p in _modules()}
    assert {"_cli", "testing", "_client.py", "_batch.py"} <= names
