"""Fingerprints of the code that decides a verdict.

A rule grader's verdict depends on its check function *and* every helper, pattern and word
list it uses, so its identity includes :func:`code_fingerprint` of the rule modules: the hash of
their syntax trees with docstrings removed (editing a comment or a docstring changes nothing;
editing any code or constant does). Judges use explicit versions instead (re-judging is
expensive), guarded by a test that pins the fingerprints of their parser and renderer.
"""

from __future__ import annotations

import ast
import functools
import importlib
import inspect
import pkgutil
from collections.abc import Sequence

from deploysim.hashing import content_hash


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return tree


def source_fingerprint(source: str) -> str:
    """Hash of ``source``'s syntax tree without docstrings (layout and comments do not count)."""
    return content_hash(ast.dump(_strip_docstrings(ast.parse(source)), annotate_fields=False))


@functools.cache
def code_fingerprint(modules: Sequence[str]) -> str:
    """One hash over the named modules' code (see :func:`source_fingerprint`)."""
    parts = {}
    for name in sorted(modules):
        module = importlib.import_module(name)
        parts[name] = source_fingerprint(inspect.getsource(module))
    return content_hash(parts)


def rule_modules() -> tuple[str, ...]:
    """Every module a rule verdict can depend on: the rule engine, each ``rules_*`` module and
    the transcript view they read."""
    package = importlib.import_module("deploysim.grade")
    names = [f"deploysim.grade.{m.name}" for m in pkgutil.iter_modules(package.__path__)
             if m.name == "rules" or m.name.startswith("rules_")]
    return tuple(sorted([*names, "deploysim.grade.transcript", "deploysim.grade.base"]))
