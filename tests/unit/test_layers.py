"""The allowed import directions between corehour's parts, read from the code with ``ast``.

* ``centre/``, the shared kernel, imports no other part of ours.
* ``voila_apps/`` (code that runs in people's app servers) imports only ``centre/``.
* Features (``spawners/``, ``billing_hooks/``, ``extensions/``) may import ``centre/``; an
  import from one feature into another is allowed only where :data:`TANGLES` lists it.
  Those are the tangles still to be removed (the composition roots and the spawn
  admission of issue 13); the list may only shrink, so a new import across features fails.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
KERNEL = "centre"
FEATURES = ("spawners", "billing_hooks", "extensions")
APPS = "voila_apps"
PARTS = (KERNEL, *FEATURES, APPS)

# file → the parts it still imports across features.  Shrink it; never grow it.
TANGLES = {
    "billing_hooks/idle.py": {"spawners"},
    "billing_hooks/reconcile.py": {"spawners"},
    "billing_hooks/service/app.py": {"spawners", "extensions"},
    "billing_hooks/spawn_hook.py": {"spawners", "extensions"},
    "extensions/courses/actions.py": {"billing_hooks"},
    "extensions/courses/api.py": {"billing_hooks"},
    "extensions/courses/caps.py": {"billing_hooks"},
    "extensions/courses/chart.py": {"billing_hooks"},
    "extensions/courses/hub.py": {"billing_hooks"},
    "extensions/courses/hub_api.py": {"billing_hooks"},
    "extensions/courses/pages.py": {"billing_hooks"},
    "extensions/courses/roles.py": {"billing_hooks"},
    "extensions/courses/spawn_rules.py": {"billing_hooks"},
    "extensions/courses/sso_sync.py": {"billing_hooks"},
    "extensions/courses/store.py": {"billing_hooks"},
    "extensions/courses/views.py": {"billing_hooks"},
    "spawners/configurer.py": {"billing_hooks", "extensions", "voila_apps"},
    "spawners/spawner.py": {"billing_hooks"},
}


def imported_parts(path: Path) -> set[str]:
    """The parts of ours that ``path`` imports (absolute imports; relative ones stay inside)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found.update(name.split(".")[0] for name in names if name.split(".")[0] in PARTS)
    return found


def import_map(root: Path = REPO) -> dict[str, set[str]]:
    """file (relative to ``root``) → the other parts it imports."""
    result = {}
    for part in PARTS:
        for path in sorted((root / part).rglob("*.py")):
            others = imported_parts(path) - {part}
            if others:
                result[path.relative_to(root).as_posix()] = others
    return result


def violations(imports: dict[str, set[str]]) -> list[str]:
    """Every import that breaks the rules above, as 'file → part'."""
    broken = []
    for file, parts in imports.items():
        part = file.split("/")[0]
        if part == KERNEL:
            allowed: set[str] = set()
        elif part == APPS:
            allowed = {KERNEL}
        else:
            allowed = {KERNEL} | TANGLES.get(file, set())
        broken.extend(f"{file} → {other}" for other in sorted(parts - allowed))
    return broken


def test_the_tree_keeps_the_allowed_import_directions():
    assert violations(import_map()) == []


def test_the_tangle_list_only_names_imports_that_still_exist():
    imports = import_map()
    stale = {
        file: parts - imports.get(file, set())
        for file, parts in TANGLES.items()
        if parts - imports.get(file, set())
    }
    assert stale == {}, f"remove these from TANGLES, they are gone: {stale}"


@pytest.mark.parametrize(
    ("file", "source", "broken"),
    [
        ("centre/site.py", "from spawners.spawner import CorehourSpawner\n", "centre/site.py → spawners"),
        ("voila_apps/kit/jobs.py", "import billing_hooks.ledger\n", "voila_apps/kit/jobs.py → billing_hooks"),
        ("billing_hooks/meter.py", "from extensions.courses import store\n", "billing_hooks/meter.py → extensions"),
        ("spawners/form.py", "from billing_hooks.gate import quote_mc_per_hour\n", "spawners/form.py → billing_hooks"),
    ],
)  # fmt: skip
def test_a_new_import_across_parts_is_caught(tmp_path, file, source, broken):
    target = tmp_path / file
    target.parent.mkdir(parents=True)
    target.write_text(source)
    assert violations(import_map(tmp_path)) == [broken]
