"""DESIGN.md's layering rules, each checked: what a layer imports in a fresh interpreter, and no
private nvcodec name imported from outside nvcodec (benchmarks and cli use the public API)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# module imported → module prefixes that must not be loaded as a consequence
RULES = {
    "bitstream": ["torch", "nvcodec", "av", "constriction"],
    "nvcodec.models": ["nvcodec.training", "nvcodec.compression", "nvcodec.io", "av"],
    "nvcodec.training": ["nvcodec.compression", "nvcodec.io", "nvcodec.encoder", "av"],
    "nvcodec.compression": ["nvcodec.training", "nvcodec.io", "nvcodec.encoder", "av"],
    "nvcodec.io": ["nvcodec.training", "nvcodec.compression", "nvcodec.models"],
    # the decoder path never imports training code
    "nvcodec.decoder": ["nvcodec.training", "nvcodec.pipeline", "nvcodec.encoder"],
    "nvcodec.inspection": ["nvcodec.training", "nvcodec.pipeline", "nvcodec.encoder"],
    # `nvc --help` is instant
    "cli.main": ["torch", "nvcodec"],
    # Ray is an optional extra: a segmented encode imports it only when --ray asks for it
    "nvcodec.segment_encoder": ["ray"],
    "nvcodec.segmented": ["nvcodec.training", "nvcodec.pipeline", "nvcodec.encoder"],
}


@pytest.mark.parametrize("module", sorted(RULES))
def test_layer_imports(module: str) -> None:
    code = (
        f"import importlib, json, sys; importlib.import_module({module!r}); "
        "print(json.dumps(sorted(sys.modules)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    loaded = json.loads(done.stdout)
    bad = [m for m in loaded for p in RULES[module] if m == p or m.startswith(p + ".")]
    assert bad == [], f"importing {module} loads {bad}"


@pytest.mark.parametrize("folder", ["benchmarks", "cli"])
def test_no_private_nvcodec_names_outside_nvcodec(folder: str) -> None:
    private = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("nvcodec"):
                private += [f"{path.name}: {a.name}" for a in node.names if a.name[0] == "_"]
    assert private == []


def test_only_the_ray_runner_imports_ray() -> None:
    importers = []
    for folder in ("nvcodec", "bitstream", "cli", "benchmarks"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom):
                    names = [node.module or ""]
                if any(n == "ray" or n.startswith("ray.") for n in names):
                    importers.append(str(path.relative_to(ROOT)))
    assert sorted(set(importers)) == ["nvcodec/segment_jobs.py"]
