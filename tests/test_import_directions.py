"""The layout's one rule, checked: imports run down the house, never back up.

From the top: ``shell`` (the worker, the admin site and its dashboard, the metrics scrape) may
use everything; the MTN callback doors (``webhooks``' inbound side) use ``payments``;
``payments`` uses the merchant webhooks' outbox (``webhooks``' outbound side, which knows no
payment), ``tenants``, ``ledger`` and ``mtn``; the outbox uses ``tenants``; ``tenants`` uses
the ``ledger`` (a tenant's balances); ``ledger`` and ``mtn`` use only the kernel; the kernel
(``gateway``) uses nothing of the project. Tests and migrations are not held to it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# The floors, ground first, and what each may import besides itself (the floors below it that
# it really uses: ledger and mtn know nothing of each other).
ALLOWED: dict[str, frozenset[str]] = {
    "gateway": frozenset(),
    "ledger": frozenset({"gateway"}),
    "mtn": frozenset({"gateway"}),
    "tenants": frozenset({"gateway", "ledger"}),
    "outbox": frozenset({"gateway", "tenants"}),
    "payments": frozenset({"gateway", "ledger", "mtn", "tenants", "outbox"}),
    "callbacks": frozenset({"gateway", "ledger", "mtn", "tenants", "outbox", "payments"}),
    "shell": frozenset({"gateway", "ledger", "mtn", "tenants", "outbox", "payments", "callbacks"}),
}
PACKAGES = ("gateway", "ledger", "mtn", "tenants", "payments", "webhooks", "shell")
# webhooks/ holds both sides of the webhooks: MTN's callbacks coming in (above payments, whose
# state machine they drive) and the merchants' webhooks going out (below it: a payment that
# becomes final writes its event into the outbox in the same transaction).
CALLBACK_MODULES = ("webhooks.inbound", "webhooks.views", "webhooks.urls", "webhooks.admin")


def floor_of(module: str) -> str:
    package = module.split(".")[0]
    if package != "webhooks":
        return package
    inbound = any(module == name or module.startswith(f"{name}.") for name in CALLBACK_MODULES)
    return "callbacks" if inbound else "outbox"


def _is_checked(path: Path, root: Path) -> bool:
    parts = path.relative_to(root).parts
    return "tests" not in parts and "migrations" not in parts


def _module_name(path: Path, root: Path) -> str:
    return ".".join(path.relative_to(root).with_suffix("").parts).removesuffix(".__init__")


def _project_imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import of a project module in ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # "from webhooks import inbound" names the module it takes.
            names = [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        found += [(node.lineno, name) for name in names if name.split(".")[0] in PACKAGES]
    return found


def wrong_way_imports(root: Path = ROOT) -> list[str]:
    """Every import in ``root``'s packages that runs against the allowed directions."""
    problems = []
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            if not _is_checked(path, root):
                continue
            floor = floor_of(_module_name(path, root))
            for line, target in _project_imports(path):
                target_floor = floor_of(target)
                if target_floor != floor and target_floor not in ALLOWED[floor]:
                    problems.append(f"{path.relative_to(root)}:{line} imports {target}")
    return problems


def test_no_import_runs_back_up_the_house():
    assert wrong_way_imports() == []


@pytest.mark.parametrize(
    ("path", "source", "expected"),
    [
        ("gateway/module.py", "from payments.models import Payment\n", "payments.models.Payment"),
        ("ledger/module.py", "import tenants.models\n", "tenants.models"),
        ("mtn/module.py", "from shell import worker\n", "shell.worker"),
        ("payments/module.py", "from webhooks.inbound import x\n", "webhooks.inbound.x"),
        ("tenants/module.py", "from payments import services\n", "payments.services"),
        ("webhooks/outbox.py", "from payments import services\n", "payments.services"),
    ],
)
def test_an_import_against_the_directions_is_found(tmp_path, path, source, expected):
    for package in PACKAGES:
        (tmp_path / package).mkdir()
    (tmp_path / path).write_text(source)
    assert wrong_way_imports(tmp_path) == [f"{path}:1 imports {expected}"]


def test_imports_down_the_house_are_allowed(tmp_path):
    for package in PACKAGES:
        (tmp_path / package).mkdir()
    (tmp_path / "payments" / "a.py").write_text("from webhooks.outbox import outbox_enqueue\n")
    (tmp_path / "webhooks" / "inbound.py").write_text("from payments import services\n")
    (tmp_path / "shell" / "b.py").write_text("import webhooks.inbound\nimport payments\n")
    assert wrong_way_imports(tmp_path) == []


def test_tests_and_migrations_are_not_held_to_the_directions(tmp_path):
    for package in PACKAGES:
        (tmp_path / package).mkdir()
    (tmp_path / "gateway" / "tests").mkdir()
    (tmp_path / "gateway" / "tests" / "test_x.py").write_text("from payments import models\n")
    (tmp_path / "ledger" / "migrations").mkdir()
    (tmp_path / "ledger" / "migrations" / "0001.py").write_text("import tenants\n")
    assert wrong_way_imports(tmp_path) == []
