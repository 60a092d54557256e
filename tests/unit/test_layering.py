"""Layering. studio/ is the domain: it must not import Discord, web frameworks, torch or diffusers.
The bot's shell (bot/ outside bot/exts/, bot/ui/ included) sits under its features: it imports
none of them, and a feature (a package bot/exts/<name>/) imports no other feature."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = {
    "discord",
    "fastapi",
    "starlette",
    "uvicorn",
    "httpx",
    "multipart",
    "torch",
    "diffusers",
    "transformers",
    "peft",
    "gpu_worker",
    "bot",
    "api",
    "cli",
    "web",
    "jinja2",
}


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_studio_sources_import_nothing_forbidden() -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(imported_roots(path) & FORBIDDEN)
        for path in (ROOT / "studio").rglob("*.py")
        if imported_roots(path) & FORBIDDEN
    }
    assert offenders == {}


def test_importing_studio_loads_no_heavy_module() -> None:
    code = (
        "import sys, studio.app, studio.generations, studio.finisher, studio.recipe, studio.jobs;"
        f"print(sorted(set({sorted(FORBIDDEN)!r}) & {{m.split('.')[0] for m in sys.modules}}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


def module_name(path: Path, root: Path = ROOT) -> str:
    return ".".join(path.relative_to(root).with_suffix("").parts)


def imported_modules(path: Path, root: Path = ROOT) -> set[str]:
    """Every module ``path`` imports, wherever the import stands (functions, ``if TYPE_CHECKING:``),
    relative imports resolved, and ``from a import b`` counted as ``a.b`` too (b may be a module)."""
    package = module_name(path, root).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def feature_of(module: str) -> str | None:
    """``generate`` for ``bot.exts.generate._cog``; None outside a feature (``bot.exts`` itself too)."""
    parts = module.split(".")
    return parts[2] if parts[:2] == ["bot", "exts"] and len(parts) > 2 else None


def layering_breaches(paths: list[Path], root: Path = ROOT) -> dict[str, list[str]]:
    """For each bot file, the imports that break the layering: a feature imported by the shell
    (a file of no feature), or by another feature."""
    breaches = {}
    for path in paths:
        own = feature_of(module_name(path, root))
        wrong = sorted(
            module
            for module in imported_modules(path, root)
            if (feature := feature_of(module)) is not None and feature != own
        )
        if wrong:
            breaches[str(path.relative_to(root))] = wrong
    return breaches


BOT_FILES = sorted((ROOT / "bot").rglob("*.py"))
SHELL_FILES = [p for p in BOT_FILES if feature_of(module_name(p)) is None]
FEATURE_FILES = [p for p in BOT_FILES if feature_of(module_name(p)) is not None]


def test_the_bot_shell_imports_no_feature() -> None:
    assert {ROOT / "bot" / "app.py", ROOT / "bot" / "delivery.py", ROOT / "bot" / "ui" / "images.py"} <= set(
        SHELL_FILES
    )
    assert layering_breaches(SHELL_FILES) == {}


def test_no_bot_feature_imports_another() -> None:
    features = {feature_of(module_name(p)) for p in FEATURE_FILES}
    assert {"generate", "remix", "browse", "finish", "forge"} <= features
    assert layering_breaches(FEATURE_FILES) == {}


def test_the_layering_check_sees_every_form_of_import(tmp_path: Path) -> None:
    """The two tests above would pass on a check that sees nothing: it must catch each form."""
    feature = tmp_path / "bot" / "exts" / "browse" / "_probe.py"
    shell = tmp_path / "bot" / "_probe.py"
    type_checking = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    "
    refused = {
        feature: [
            "from bot.exts.remix._cog import RemixButton",
            "import bot.exts.remix._cog",
            "from bot.exts import remix",
            "from ..remix import _cog",
            "def f():\n    from bot.exts.remix import _cog",
            type_checking + "from bot.exts.remix._cog import AtelierCog",
        ],
        shell: ["from bot.exts.generate._cog import GenerateCog", "from .exts.forge import _render"],
    }
    allowed = {
        feature: [
            "from bot.exts.browse._cog import BrowseCog",
            "from . import _cog",
            type_checking + "from bot.app import AtelierBot",
            "from bot.ui.remix import RemixButton",
            "from bot import exts",
        ],
        shell: ["from bot.ui.generation import result_view", "from bot import render"],
    }
    for verdict, cases in ((True, refused), (False, allowed)):
        for where, sources in cases.items():
            for source in sources:
                where.parent.mkdir(parents=True, exist_ok=True)
                where.write_text(source + "\n", encoding="utf-8")
                assert bool(layering_breaches([where], tmp_path)) is verdict, source
