"""The house rules a newcomer relies on: every module says its one job and stays readable."""

from __future__ import annotations

import ast

import pytest

from tests.conftest import REPO_ROOT

PACKAGE = REPO_ROOT / "airflow_provider_azerion"
#: Most lines a module of the package may have.
MAX_MODULE_LINES = 400
MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda path: str(path.relative_to(PACKAGE)))
def test_each_module_opens_with_a_docstring_and_stays_under_the_size_limit(path):
    source = path.read_text()
    assert ast.get_docstring(ast.parse(source)), "say the module's one job in its docstring"
    assert len(source.splitlines()) <= MAX_MODULE_LINES, "split it by role"


def test_the_operator_module_reads_as_one_task_story():
    source = (PACKAGE / "operators" / "image_generation.py").read_text()
    tree = ast.parse(source)
    (operator,) = (node for node in tree.body if isinstance(node, ast.ClassDef))
    (execute,) = (
        node for node in operator.body if isinstance(node, ast.FunctionDef) and node.name == "execute"
    )
    assert execute.end_lineno - execute.lineno + 1 <= 40
    assert len(source.splitlines()) < 300


# Rules stated once: the literal (or pattern) may appear in the one module that owns the rule only.
ONE_OWNER = {
    '"manifest.jsonl"': "layout.py",
    '"review-"': "layout.py",
    r"(?P<prompt>\d": "layout.py",
    '.partial"': "layout.py",
    'f"{prompt_index:04d}': "layout.py",
}


@pytest.mark.parametrize("literal", ONE_OWNER, ids=str)
def test_each_rule_of_the_folder_layout_is_written_in_one_module(literal):
    owners = sorted(
        str(path.relative_to(PACKAGE))
        for path in MODULES
        if "emulator" not in path.parts and literal in path.read_text()
    )
    assert owners == [ONE_OWNER[literal]]
