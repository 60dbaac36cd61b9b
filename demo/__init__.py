"""The built-in demo model's training, run from the repository (not part of the wheel):

    python -m demo.train OUT [--smoke] [--ship]

text.py writes its sentences, speech.py synthesizes them, data.py builds the data sets, train.py
trains, exports and scores it; ``checkpoint/`` is the shipped checkpoint. The trained bundle is
the runtime's package data (runtime/assets/demo), so installs get the model, not its training.
"""

from pathlib import Path

CHECKPOINT = Path(__file__).resolve().parent / "checkpoint"
