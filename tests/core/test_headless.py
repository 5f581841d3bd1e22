"""core stands alone: every module imports with PySide6 (and Qt matplotlib backends) made unimportable."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CORE_MODULES = sorted(p.stem for p in (ROOT / "core").glob("*.py") if p.stem != "__init__")


def test_core_imports_without_qt():
    code = textwrap.dedent(f"""
        import importlib.abc, sys

        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("PySide6", "PyQt5", "PyQt6", "shiboken6") or "backend_qt" in name:
                    raise ImportError("blocked for the headless test: " + name)
                return None

        sys.meta_path.insert(0, Block())
        import core
        for m in {CORE_MODULES!r}:
            importlib.import_module("core." + m)
        leaked = [n for n in sys.modules if n.split(".")[0] in ("PySide6", "shiboken6")]
        assert not leaked, leaked
        print("ok", len({CORE_MODULES!r}))
    """)
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"ok {len(CORE_MODULES)}"
    assert {"config", "data", "models", "engine", "cli"} <= set(CORE_MODULES)
