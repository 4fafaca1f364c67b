"""The layer check (scripts/check_layers.py) holds for the project, and fails on each kind of
problem it exists to catch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import check_layers  # noqa: E402


def test_the_project_keeps_its_layers():
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "check_layers.py")], capture_output=True,
                            text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "imports point down" in result.stdout


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for folder in ("core", "runners", "storage", "common", "app_pages", "demo"):
        (tmp_path / folder).mkdir(exist_ok=True)
        (tmp_path / folder / "__init__.py").touch()
    return tmp_path


@pytest.mark.parametrize(("files", "expected"), [
    ({"storage/db.py": "from core.feeds import x\n", "core/feeds.py": "x = 1\n"}, "upward import (adapters -> core)"),
    ({"common/errors.py": "import storage.db\n", "storage/db.py": ""}, "upward import (common -> adapters)"),
    ({"core/feeds.py": "def f():\n    from app_pages import view\n", "app_pages/view.py": ""},
     "upward import (core -> ui)"),
    ({"runners/base.py": "from storage import db\n", "storage/db.py": ""}, "import between adapters (runners -> storage)"),
    ({"storage/db.py": "import runners.base\n", "runners/base.py": ""}, "import between adapters (storage -> runners)"),
    ({"core/a.py": "from core import b\n", "core/b.py": "def f():\n    import core.a\n"}, "import cycle: core.a <-> core.b"),
    ({"core/feeds.py": "import streamlit as st\n"}, "Streamlit outside the UI layer"),
    ({"runners/lib/__init__.py": "from common import errors\n", "common/errors.py": ""},
     "the sandbox's lib package imports the project"),
])
def test_each_kind_of_problem_is_found(tmp_path, files, expected):
    found = check_layers.problems(_tree(tmp_path, files))
    assert any(expected in line for line in found), found


def test_imports_that_point_down_pass(tmp_path):
    files = {"app_pages/page.py": "import streamlit\nfrom core import feeds\nfrom storage import db\n",
             "core/feeds.py": "from storage import db\nfrom common import errors\n",
             "storage/db.py": "from common import errors\n", "common/errors.py": ""}
    assert check_layers.problems(_tree(tmp_path, files)) == []
