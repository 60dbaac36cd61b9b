"""The four commands' shared wrapper: one ``error:`` line and exit 2 for the package's errors,
tracebacks with --debug, and logging that touches the package's own logger only."""

from __future__ import annotations

import ast
import logging

import pytest

from qwen_asr_edge.runtime.console import package_logging, run_command
from qwen_asr_edge.runtime.errors import InputError
from tests.support import ROOT


def test_package_errors_become_one_line_and_exit_2(capsys):
    def fails() -> int:
        raise InputError("--threads must be at least 1")

    assert run_command(fails) == 2
    assert capsys.readouterr().err == "error: --threads must be at least 1\n"
    with pytest.raises(InputError):
        run_command(fails, debug=True)
    with pytest.raises(ZeroDivisionError):  # a bug is not dressed up as a user error
        run_command(lambda: 1 // 0)
    assert run_command(lambda: 1) == 1


def test_logging_touches_only_the_package_logger(capsys):
    root, other = logging.getLogger(), logging.getLogger("onnxruntime.quantization")
    before = (root.level, list(root.handlers), other.level, list(other.handlers))
    package = logging.getLogger("qwen_asr_edge")
    package_before = (package.level, list(package.handlers), package.propagate)
    with package_logging(progress=("qwen_asr_edge.export",)):
        assert (root.level, list(root.handlers), other.level, list(other.handlers)) == before
        logging.getLogger("qwen_asr_edge.runtime.x").info("hidden: INFO without --debug")
        logging.getLogger("qwen_asr_edge.runtime.x").warning("a warning")
        logging.getLogger("qwen_asr_edge.export").info("exporting the encoder")  # progress
    assert capsys.readouterr().err == "a warning\nexporting the encoder\n"
    with package_logging(debug=True):
        logging.getLogger("qwen_asr_edge.runtime.x").info("provider: cpu")
    assert capsys.readouterr().err == "provider: cpu\n"
    assert (package.level, list(package.handlers), package.propagate) == package_before
    assert logging.getLogger("qwen_asr_edge.export").level == logging.NOTSET


def test_a_command_quiets_another_library_only_while_it_runs():
    from qwen_asr_edge.runtime.console import quiet_loggers

    other = logging.getLogger("python_multipart")
    before = other.level
    with quiet_loggers(("python_multipart",), logging.ERROR):
        assert other.level == logging.ERROR
    assert other.level == before


def _reconfigures_foreign_logging(source: str) -> list[int]:
    """Lines that call logging.basicConfig, or setLevel on the root or another library's logger."""
    bad = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        if node.func.attr == "basicConfig":
            bad.append(node.lineno)
        target = node.func.value
        if node.func.attr in ("setLevel", "addHandler") and isinstance(target, ast.Call):
            name = target.args[0].value if target.args and isinstance(target.args[0], ast.Constant) else None
            if not (isinstance(name, str) and name.startswith("qwen_asr_edge")):
                bad.append(node.lineno)
    return bad


def test_library_code_never_reconfigures_other_loggers():
    snippet = 'import logging\nlogging.basicConfig()\nlogging.getLogger("torch.x").setLevel(40)\n'
    assert _reconfigures_foreign_logging(snippet + "logging.getLogger().setLevel(40)\n") == [2, 3, 4]
    assert _reconfigures_foreign_logging('logging.getLogger("qwen_asr_edge.quant").setLevel(20)') == []
    found = {}
    for part in ("runtime", "export", "quant", "qwen_asr_edge"):  # what ships; bench and demo are apps
        for path in (ROOT / part).rglob("*.py"):
            if bad := _reconfigures_foreign_logging(path.read_text(encoding="utf-8")):
                found[str(path.relative_to(ROOT))] = bad
    assert found == {}
