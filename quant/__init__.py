"""Quantization of bundles (INT8, INT4, fp16). Not built yet: see issue 3."""
