"""Rules of the house: core is pure protocol; web reaches storage only through core and
the runtime; settings stand alone; start-up stays lean."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

import keyturn

PACKAGE = Path(keyturn.__file__).parent
FORBIDDEN_IN_CORE = {
    "sqlalchemy",
    "alembic",
    "psycopg",
    "starlette",
    "uvicorn",
    "jinja2",
    "httpx",
    "fastapi",
    "flask",
    "django",
    "keyturn.store",
    "keyturn.web",
    "keyturn.cli",
    "keyturn.runtime",
}


#: What web may import of Keyturn: the protocol, the wiring, the settings, and itself.
ALLOWED_IN_WEB = ("keyturn.core", "keyturn.runtime", "keyturn.settings", "keyturn.web")


def _imports(path: Path) -> set[str]:
    """Every module a file imports, at its top or inside a function (also under
    TYPE_CHECKING); relative imports resolved."""
    package = ".".join(("keyturn", *path.relative_to(PACKAGE).parent.parts))
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
            module = node.module if node.level == 0 else ".".join(filter(None, (base, node.module)))
            if module:
                names.add(module)
    return names


def _within(name: str, prefixes: Iterable[str]) -> bool:
    return any(name == f or name.startswith(f + ".") for f in prefixes)


def _offenders(folder: str, forbidden: Callable[[str], bool]) -> dict[str, list[str]]:
    found = {
        str(path.relative_to(PACKAGE)): sorted(n for n in _imports(path) if forbidden(n))
        for path in (PACKAGE / folder).rglob("*.py")
    }
    return {path: names for path, names in found.items() if names}


def test_core_source_imports_no_web_framework_orm_or_outer_layer() -> None:
    assert _offenders("core", lambda name: _within(name, FORBIDDEN_IN_CORE)) == {}


def test_web_reaches_storage_only_through_core_and_the_runtime() -> None:
    """web never imports store (nor the CLI, tokens, cluster): what it needs of storage
    is core's ports and the runtime's wiring."""

    def forbidden(name: str) -> bool:
        return name.startswith("keyturn") and not _within(name, ALLOWED_IN_WEB)

    assert _offenders("web", forbidden) == {}


def _resolved_imports(path: Path) -> set[str]:
    """The modules ``path`` imports, relative imports resolved against its package."""
    package = list(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def test_the_protocol_api_and_the_pages_do_not_import_each_other() -> None:
    """web/api (bare ASGI, the hot paths) and web/pages (Starlette) share only what
    web itself holds (http, errors, observability); the app puts them side by side."""
    crossing = {
        str(path.relative_to(PACKAGE)): sorted(n for n in _resolved_imports(path) if _within(n, (other,)))
        for folder, other in (("api", "keyturn.web.pages"), ("pages", "keyturn.web.api"))
        for path in (PACKAGE / "web" / folder).rglob("*.py")
    }
    assert {path: names for path, names in crossing.items() if names} == {}
    starlette = {
        str(path.relative_to(PACKAGE))
        for path in (PACKAGE / "web" / "api").rglob("*.py")
        if any(_within(n, ("starlette", "jinja2")) for n in _resolved_imports(path))
    }
    assert starlette == set()


def test_store_imports_no_outer_layer() -> None:
    outer = ("keyturn.web", "keyturn.runtime", "keyturn.cli", "keyturn.cluster", "keyturn.resource")
    assert _offenders("store", lambda name: _within(name, outer)) == {}


def test_importing_core_and_the_memory_store_loads_no_framework_or_orm() -> None:
    code = (
        "import sys, json, pkgutil, importlib, keyturn.core as core;"
        "[importlib.import_module('keyturn.core.' + m.name) for m in pkgutil.iter_modules(core.__path__)];"
        "import keyturn.store.memory;"
        "print(json.dumps(sorted(sys.modules)))"
    )
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    third_party = {f for f in FORBIDDEN_IN_CORE if not f.startswith("keyturn")}
    assert sorted(m for m in loaded if m.split(".")[0] in third_party) == []


def test_the_cli_starts_without_importing_the_server_stack() -> None:
    code = "import sys, json, keyturn.cli; print(json.dumps(sorted(sys.modules)))"
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    heavy = {"sqlalchemy", "alembic", "uvicorn", "starlette", "argon2", "cryptography", "jinja2"}
    assert sorted(m for m in loaded if m.split(".")[0] in heavy) == []


def test_settings_import_nothing_from_keyturn() -> None:
    """Settings are read before anything else is built: they depend on no Keyturn module,
    so no Keyturn module can be half-imported while they load."""
    modules = sorted((PACKAGE / "settings").glob("*.py"))
    assert [m.name for m in modules if m.name == "__init__.py"] == ["__init__.py"]
    outside: list[str] = []
    for path in modules:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif isinstance(node, ast.ImportFrom) and node.level > 1:
                # ``from .. import x`` climbs out of the package into keyturn.
                names = [f"{'.' * node.level}{node.module or ''}"]
            else:
                continue
            outside += [
                f"{path.name}: {name}"
                for name in names
                if name.startswith(".")
                or (name.split(".")[0] == "keyturn" and not (name + ".").startswith("keyturn.settings."))
            ]
    assert outside == []


def test_settings_package_exports_its_names_and_keeps_its_modules_private() -> None:
    import keyturn.settings

    assert len(set(keyturn.settings.__all__)) == len(keyturn.settings.__all__)
    assert set(keyturn.settings.__all__) == {
        "ENVIRONMENTS",
        "ENV_PREFIX",
        "ERROR_STYLES",
        "SCOPE_TOKEN",
        "SIGNING_ALGORITHMS",
        "TOKEN_FORMATS",
        "ConfigFileError",
        "configured_keys",
        "Settings",
        "SettingsError",
        "load_settings",
    }
    for name in keyturn.settings.__all__:
        assert getattr(keyturn.settings, name) is not None
    public = [p.name for p in (PACKAGE / "settings").glob("*.py") if not p.name.startswith("_")]
    assert public == []
