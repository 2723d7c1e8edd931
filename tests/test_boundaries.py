"""Rules of the house: core is pure protocol; start-up stays lean."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
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


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def _forbidden(name: str) -> bool:
    return any(name == f or name.startswith(f + ".") for f in FORBIDDEN_IN_CORE)


def test_core_source_imports_no_web_framework_orm_or_outer_layer() -> None:
    offenders = {
        str(path.relative_to(PACKAGE)): sorted(n for n in _imports(path) if _forbidden(n))
        for path in (PACKAGE / "core").rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


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
        "Settings",
        "SettingsError",
        "load_settings",
    }
    for name in keyturn.settings.__all__:
        assert getattr(keyturn.settings, name) is not None
    public = [p.name for p in (PACKAGE / "settings").glob("*.py") if not p.name.startswith("_")]
    assert public == []
