"""The allowed import directions between corehour's parts, read from the code with ``ast``.

* ``centre/``, the shared kernel, imports no other part of ours.
* ``voila_apps/`` (code that runs in people's app servers) imports only ``centre/``.
* Features (``spawners/``, ``billing_hooks/``, ``extensions/``) may import ``centre/``, and
  not each other.  The one declared exception is a plugin and its host: courses is a plugin
  of the billing service (:data:`PLUGIN_HOSTS`), so it may use the service's handlers and
  the ledger's models; billing never imports courses.
* ``roots/``, the composition roots (hub, billing service, operations), may import every
  part, and no part imports them.
* :data:`TANGLES` lists imports across features still to be removed; it may only shrink.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
KERNEL = "centre"
FEATURES = ("spawners", "billing_hooks", "extensions")
APPS = "voila_apps"
ROOTS = "roots"
PARTS = (KERNEL, *FEATURES, APPS, ROOTS)

# A plugin's folder → the feature it plugs into.  Never the other way round.
PLUGIN_HOSTS = {"extensions/courses/": "billing_hooks", "extensions/notify/": "billing_hooks"}

# file → the parts it still imports across features.  Shrink it; never grow it.
TANGLES: dict[str, set[str]] = {}


def imported_packages(path: Path) -> set[str]:
    """The top-level packages ``path`` imports (absolute imports; relative ones stay inside)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found.update(name.split(".")[0] for name in names)
    return found


def imported_parts(path: Path) -> set[str]:
    """The parts of ours that ``path`` imports."""
    return imported_packages(path) & set(PARTS)


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
        if part == ROOTS:
            continue
        if part == KERNEL:
            allowed: set[str] = set()
        elif part == APPS:
            allowed = {KERNEL}
        else:
            hosts = {host for folder, host in PLUGIN_HOSTS.items() if file.startswith(folder)}
            allowed = {KERNEL} | hosts | TANGLES.get(file, set())
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
        ("spawners/spawner.py", "from extensions.courses import spawn_rules\n", "spawners/spawner.py → extensions"),
        ("billing_hooks/service/app.py", "from roots.billing import PLUGINS\n", "billing_hooks/service/app.py → roots"),
        ("extensions/sso/oidc.py", "from billing_hooks.models import Course\n", "extensions/sso/oidc.py → billing_hooks"),
        ("extensions/launcher.py", "import spawners.spawner\n", "extensions/launcher.py → spawners"),
    ],
)  # fmt: skip
def test_a_new_import_across_parts_is_caught(tmp_path, file, source, broken):
    target = tmp_path / file
    target.parent.mkdir(parents=True)
    target.write_text(source)
    assert violations(import_map(tmp_path)) == [broken]


def test_only_the_composition_roots_import_extensions():
    importers = {file for file, parts in import_map().items() if "extensions" in parts}
    outside = {f for f in importers if not f.startswith(("extensions/", "roots/"))}
    assert outside == set()
    assert {f for f in importers if f.startswith("roots/")} == {
        "roots/hub.py",
        # The hub root's reading of the outside facts, run in a child process of the hub.
        "roots/hub_facts.py",
        "roots/billing.py",
        "roots/ops.py",
    }


def test_the_roots_may_import_every_part_and_a_plugin_its_host(tmp_path):
    for file, source in {
        "roots/hub.py": "import extensions.sso\nimport billing_hooks.db\nimport voila_apps\n",
        "extensions/courses/store.py": "from billing_hooks.models import Course\n",
    }.items():
        (tmp_path / file).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / file).write_text(source)
    assert violations(import_map(tmp_path)) == []


def test_app_servers_get_every_part_their_code_imports():
    import tomllib

    with (REPO / "pyproject.toml").open("rb") as f:
        shipped = tomllib.load(f)["tool"]["corehour"]["app-server-code"]
    packages = {path.split("/")[0] for path in shipped if "/" not in path}
    needed = {APPS} | set().union(*(imported_parts(p) for p in (REPO / APPS).rglob("*.py")))
    assert needed <= packages
    launcher = REPO / "spawners" / "launch.py"
    assert "spawners/launch.py" in shipped and imported_parts(launcher) == set()


def test_the_client_imports_only_the_standard_library():
    """``client/`` runs on people's own machines, where nothing of ours or PyPI's is installed."""
    allowed = {"client", "__future__", *sys.stdlib_module_names}
    outside = {
        path.relative_to(REPO).as_posix(): foreign
        for path in sorted((REPO / "client").rglob("*.py"))
        if (foreign := imported_packages(path) - allowed)
    }
    assert not outside, outside
