"""The setup scripts: apt waits for a held lock, the torch pin they read is the extra's, the
package builds without setuptools' warnings, and the demo sets up the runtime alone."""

from __future__ import annotations

import subprocess
import sys
import zipfile

import pytest

from tests.support import ROOT

SETUP = ROOT / "scripts" / "setup.sh"
APT = ROOT / "scripts" / "apt.sh"  # apt_update, sourced by setup.sh and android-toolchain.sh


def run_apt_update(tmp_path, stub: str) -> tuple[subprocess.CompletedProcess, int]:
    """The setup scripts' apt_update with apt-get (and sleep) replaced by shell functions."""
    function = subprocess.run(
        ["sed", "-n", "/^apt_update()/,/^}/p", str(APT)], capture_output=True, text=True, check=True
    ).stdout
    assert function.startswith("apt_update()")
    calls = tmp_path / "calls"
    script = f"""
calls={calls}; : > $calls
apt-get() {{ echo x >> $calls; {stub}; }}
sleep() {{ :; }}
{function}
apt_update
"""
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)
    return result, len(calls.read_text().split())


def test_apt_update_waits_while_another_process_holds_the_lists_lock(tmp_path):
    busy = "E: Could not get lock /var/lib/apt/lists/lock. It is held by process 1 (apt-get)"
    stub = f'[ $(wc -l < $calls) -ge 3 ] || {{ echo "{busy}" >&2; return 100; }}'
    result, calls = run_apt_update(tmp_path, stub)
    assert result.returncode == 0 and calls == 3
    assert result.stderr.count("waiting for the apt lists lock") == 2


def test_apt_update_fails_at_once_on_other_errors(tmp_path):
    result, calls = run_apt_update(tmp_path, 'echo "E: The repository is not signed." >&2; return 100')
    assert result.returncode == 1 and calls == 1
    assert "not signed" in result.stderr


def test_the_torch_pin_setup_reads_is_the_export_extras():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    pin = subprocess.run(
        ["bash", "-c", f"""eval "$(grep '^torch_pin=' {SETUP})"; echo "$torch_pin" """],
        capture_output=True, text=True, check=True, cwd=ROOT,
    ).stdout.strip()  # fmt: skip
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["export"]
    assert pin.startswith("torch==") and pin in extra


@pytest.mark.slow
def test_wheel_builds_without_setuptools_warnings_and_carries_the_assets(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(tmp_path), str(ROOT)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Warning" not in result.stdout + result.stderr
    (wheel,) = tmp_path.glob("qwen_asr_edge-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for asset in (
        "runtime/assets/demo/bundle/manifest.json",
        "runtime/assets/demo/examples/german.wav",
        "runtime/assets/korean_words.txt",
    ):
        assert f"qwen_asr_edge/{asset}" in names
    # The demo model's training and checkpoint stay in the repository; the wheel ships its bundle.
    assert not [n for n in names if "checkpoint/model.safetensors" in n or n.startswith("demo/")]
