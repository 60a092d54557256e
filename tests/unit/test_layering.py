"""studio/ is the domain: it must not import Discord, web frameworks, torch or diffusers."""

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
        "import sys, studio.app, studio.service, studio.recipe, studio.jobs;"
        f"print(sorted(set({sorted(FORBIDDEN)!r}) & {{m.split('.')[0] for m in sys.modules}}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"
