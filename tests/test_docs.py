"""The README documents every key of the schema, and only those."""

from __future__ import annotations

import re
from pathlib import Path

from spatialsearch.config import FLAT_KEYS
from spatialsearch.search.space.config import _TOP_KEYS

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
REFERENCE = (ROOT / "docs" / "reference.md").read_text()


def _table_keys(marker: str, text: str = README) -> set[str]:
    """Backticked names in the first column of the first table after `marker`."""
    lines = text.split(marker, 1)[1].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    keys: set[str] = set()
    for line in lines[start + 2:]:  # skip the header and |---| rows
        if not line.startswith("|"):
            break
        keys |= set(re.findall(r"`([a-z_]+)`", line.split("|")[1]))
    return keys


def test_training_keys_table_matches_the_schema():
    documented = _table_keys("## Train one network", REFERENCE)
    assert documented == set(FLAT_KEYS), documented ^ set(FLAT_KEYS)


def test_search_space_keys_table_matches_the_schema():
    documented = _table_keys("### Writing a search space")
    assert documented == _TOP_KEYS, documented ^ _TOP_KEYS


def test_readme_opens_with_the_two_commands_and_ci_runs_the_test_one():
    head = README.split("```bash", 1)[1].split("```", 1)[0]
    assert "make search" in head and "make test" in head
    ci = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text()
    assert "make test" in ci


ARCHITECTURE = (ROOT / "docs" / "architecture.md").read_text()
#: the page's sections and the folder their module names are relative to
SECTIONS = {"## The training half: `spatialsearch/`": "spatialsearch",
            "## The search half: `spatialsearch/search/`": "spatialsearch/search",
            "## Analysis: `analysis/`": "analysis"}


def _documented_modules() -> set[str]:
    found: set[str] = set()
    for marker, folder in SECTIONS.items():
        section = ARCHITECTURE.split(marker, 1)[1].split("\n## ", 1)[0]
        for line in section.splitlines():
            if line.startswith("| `"):
                first = line.split("|")[1]
                found |= {f"{folder}/{name}" for name in re.findall(r"`([\w/]+\.py)`", first)}
    return found


def _modules() -> set[str]:
    return {str(p.relative_to(ROOT)) for folder in ("spatialsearch", "analysis")
            for p in (ROOT / folder).rglob("*.py") if "__pycache__" not in p.parts}


def test_the_architecture_page_lists_every_module_and_no_other():
    documented, present = _documented_modules(), _modules()
    assert not present - documented, f"missing from docs/architecture.md: {present - documented}"
    assert not documented - present, f"named but absent: {documented - present}"


def _imports(path: Path) -> set[str]:
    import ast

    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _boundaries() -> list[tuple[str, list[str]]]:
    """(module path prefix, forbidden import prefixes) from the page's Boundaries table."""
    table = ARCHITECTURE.split("## Boundaries", 1)[1].split("\n## ", 1)[0]
    rules = []
    for line in table.splitlines():
        cells = line.split("|")
        if len(cells) < 4 or not cells[2].strip().startswith("`"):
            continue
        forbidden = re.findall(r"`([\w.]+)`", cells[3])
        for where in re.findall(r"`([\w/*.]+)`", cells[2]):
            rules.append((where.replace("*.py", ""), forbidden))
    return rules


def test_no_import_crosses_a_boundary_the_page_forbids():
    rules = _boundaries()
    assert len(rules) == 11 and any(forbidden for _, forbidden in rules)
    crossings = []
    for module in sorted(_modules()):
        for where, forbidden in rules:
            top_level_only = where.endswith("spatialsearch/")
            inside = module.startswith(where) and (
                not top_level_only or "/" not in module[len(where):])
            if not inside:
                continue
            for name in _imports(ROOT / module):
                crossings += [f"{module} imports {name}" for bad in forbidden
                              if name == bad or name.startswith(bad + ".")]
    assert not crossings, crossings


def test_each_search_subpackage_says_in_two_lines_what_it_owns_and_may_import():
    import ast

    packages = [p for p in (ROOT / "spatialsearch" / "search").iterdir()
                if (p / "__init__.py").is_file()]
    assert packages, "the search half has no subpackage"
    for package in packages:
        doc = ast.get_docstring(ast.parse((package / "__init__.py").read_text())) or ""
        assert len(doc.splitlines()) == 2 and "may import" in doc.lower(), package


def test_rays_internals_live_only_in_ray_compat():
    """`grep -rl "ray._private" spatialsearch` finds ray_compat.py alone."""
    found = sorted(str(path.relative_to(ROOT)) for path in (ROOT / "spatialsearch").rglob("*.py")
                   if "ray._private" in path.read_text())
    assert found == ["spatialsearch/search/engine/ray_compat.py"], found


def _project_imports(path: Path, known: set[str]) -> set[str]:
    """The project modules a file imports anywhere in it (function-level imports too):
    `import a.b`, `from a.b import c` (a.b, and a.b.c where that is a module)."""
    import ast

    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found & known


def test_every_import_of_the_code_forms_a_dag():
    """No import circle in spatialsearch/ or analysis/, function-level imports included (a
    function-level import can hide one); the circle is printed when there is one."""
    modules = {}
    for relative in _modules():
        name = relative.removesuffix(".py").replace("/", ".").removesuffix(".__init__")
        modules[name] = ROOT / relative
    graph = {name: _project_imports(path, set(modules)) - {name}
             for name, path in modules.items()}
    state: dict[str, int] = {}  # 1 on the path, 2 done

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for nxt in sorted(graph[name]):
            if state.get(nxt) == 1:
                loop = path[path.index(nxt):] + [nxt]
                raise AssertionError("import circle: " + " -> ".join(loop))
            if nxt not in state:
                visit(nxt, path + [nxt])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert len(graph) > 80
