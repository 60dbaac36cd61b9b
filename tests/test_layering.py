"""The dependency rule (DESIGN.md): the runtime never imports export, quant, torch, transformers or
the official qwen_asr package, not even lazily inside a function. Checked twice: statically, on
every import statement in runtime/, and dynamically, in a fresh process that loads the runtime and
the console entry points and then looks at sys.modules."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap

from tests.support import ROOT

RUNTIME = ROOT / "runtime"
PACKAGE = "qwen_asr_edge"
# Third-party roots the runtime must not import; the package's own parts are ruled below.
FORBIDDEN_ROOTS = ("torch", "transformers", "qwen_asr")


def _forbidden(module: str) -> bool:
    """True for a forbidden module: a forbidden root or anything under it, or a part of this package
    other than the runtime (export, quant, and the package-level models/cli that reach them)."""
    parts = module.split(".")
    if parts[0] in FORBIDDEN_ROOTS:
        return True
    return parts[0] == PACKAGE and len(parts) > 1 and parts[1] != "runtime" and not parts[1].startswith("__")


def forbidden_imports(source: str, module: str) -> list[tuple[int, str]]:
    """Every forbidden import in ``source``, the text of the module named ``module``.

    Looks at every import statement anywhere in the file (module level, functions, try blocks),
    resolves relative imports against ``module``, and also sees ``importlib.import_module("x")``
    and ``__import__("x")`` with a literal name.

    Args:
        source: Python source text.
        module: the dotted name of the module it is (``qwen_asr_edge.runtime.cli``), for relative imports.

    Returns:
        (line, resolved module name) for each forbidden import, in file order.
    """
    package = module.split(".")[:-1]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)] if node.level - 1 <= len(package) else []
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            names = [target, *(f"{target}.{alias.name}" for alias in node.names)]
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if called in ("import_module", "__import__") and isinstance(node.args[0].value, str):
                names = [node.args[0].value]
        bad = [n for n in names if _forbidden(n)]
        if bad:
            found.append((node.lineno, bad[0]))
    return sorted(found)


def test_the_scanner_catches_every_kind_of_forbidden_import():
    bad = textwrap.dedent(
        """
        import numpy
        from .bundle import Manifest
        from qwen_asr_edge import __version__
        import torch.nn
        def later():
            from qwen_asr_edge.export.write import export_bundle
            import transformers
        try:
            from ..quant import recipes
        except ImportError:
            pass
        from .. import export
        from qwen_asr_edge import quant
        import qwen_asr
        import qwen_asr_edge.models
        import importlib
        importlib.import_module("torch")
        """
    )
    got = forbidden_imports(bad, "qwen_asr_edge.runtime.cli")
    assert [name for _, name in got] == [
        "torch.nn",
        "qwen_asr_edge.export.write",
        "transformers",
        "qwen_asr_edge.quant",
        "qwen_asr_edge.export",
        "qwen_asr_edge.quant",
        "qwen_asr",
        "qwen_asr_edge.models",
        "torch",
    ]
    assert [line for line, _ in got] == [5, 7, 8, 10, 13, 14, 15, 16, 18]
    # Not forbidden: the runtime itself, its subpackages, and names that merely start alike.
    fine = (
        "import torchaudio_free\nfrom . import bundle\nfrom .x.y import z\nimport qwen_asr_edge.runtime.mel\n"
    )
    assert forbidden_imports(fine, "qwen_asr_edge.runtime.cli") == []


def test_runtime_sources_import_nothing_forbidden():
    files = sorted(RUNTIME.rglob("*.py"))
    assert len(files) > 15  # the scan really looked at the runtime
    found = {}
    for path in files:
        rel = path.relative_to(RUNTIME).with_suffix("")
        parts = [p for p in rel.parts if p != "__init__"]
        module = ".".join([PACKAGE, "runtime", *parts])
        if path.name == "__init__.py":
            module += ".__init__"  # relative imports in a package's __init__ resolve to the package
        bad = forbidden_imports(path.read_text(encoding="utf-8"), module)
        if bad:
            found[str(path.relative_to(ROOT))] = bad
    assert not found, f"the runtime imports what it must not (DESIGN.md, dependency direction): {found}"


CHECK = """
import importlib, json, pkgutil, sys
import qwen_asr_edge.runtime as runtime
loaded = [m.name for m in pkgutil.walk_packages(runtime.__path__, "qwen_asr_edge.runtime.")]
for name in loaded + ["qwen_asr_edge.cli", "qwen_asr_edge.models"]:
    importlib.import_module(name)
from qwen_asr_edge.cli import main
from qwen_asr_edge.runtime.demo import demo_examples
code = main(["transcribe", demo_examples()[0]["audio"], "--max-new-tokens", "2"])  # the demo path
bad = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "transformers", "qwen_asr")
             or m.startswith(("qwen_asr_edge.export", "qwen_asr_edge.quant")))
print(json.dumps({"modules": loaded, "code": code, "bad": bad}))
"""


def test_loading_the_runtime_and_the_commands_loads_no_torch_export_or_quant():
    done = subprocess.run(
        [sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=300, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert {"qwen_asr_edge.runtime.cli", "qwen_asr_edge.runtime.align_cli"} <= set(result["modules"])
    assert result["code"] == 0
    assert result["bad"] == [], f"loaded by the runtime or a command's import: {result['bad']}"


def test_the_wheel_holds_the_parts_not_the_demo_training():
    """demo/ (the demo model's training and checkpoint) runs from the repository and is not packaged;
    its trained bundle is the runtime's package data. android_bridge/ is packaged for its Python side
    (android-pack); its C, Kotlin and Gradle sources are not package data."""
    import tomllib

    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    packages = setuptools["packages"]
    assert all(p == PACKAGE or p.startswith(f"{PACKAGE}.") for p in packages)
    assert not any("demo" in p for p in packages)
    assert set(setuptools["package-dir"].values()) == {
        "qwen_asr_edge",
        "runtime",
        "export",
        "export/modules",
        "quant",
        "android_bridge",
    }
    assert setuptools["package-data"] == {
        f"{PACKAGE}.runtime": ["assets/*.txt", "assets/demo/bundle/*", "assets/demo/examples/*"]
    }
    assert (ROOT / "demo" / "checkpoint" / "model.safetensors").is_file()
