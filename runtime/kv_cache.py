"""Pre-allocated, device-resident KV cache: one buffer per layer and kind, bound as past and present.

The decoder graph updates the rows it computes in place (see export/modules/decoder.py), so
binding the same OrtValue as ``past_key_values.i.key`` input and ``present.i.key`` output means
a decode step copies neither the cache nor anything else of size O(context).
"""

from __future__ import annotations

import numpy as np

from .bundle import KvCacheSpec
from .providers import Device, import_onnxruntime


class KvCache:
    """``zeroed``: start from zeros instead of uninitialised memory. The portable graph needs it:
    in a padded batch its attention reads (with zero weight) rows that a shorter row has not
    written yet, and 0 × NaN garbage is NaN. GroupQueryAttention never reads such rows."""

    def __init__(self, spec: KvCacheSpec, batch: int, capacity: int, device: Device, zeroed: bool = False):
        if capacity > spec.max_positions:
            raise ValueError(f"{capacity} positions exceed the model's maximum of {spec.max_positions}")
        ort = import_onnxruntime()
        self.spec, self.batch, self.capacity = spec, batch, capacity
        shape = (batch, spec.num_kv_heads, capacity, spec.head_dim)
        dtype = np.dtype(spec.dtype)
        if zeroed:
            # On the CPU the OrtValue wraps the numpy array (lazily zeroed pages, no copy).
            self.buffers = [
                ort.OrtValue.ortvalue_from_numpy(np.zeros(shape, dtype), device.ort_device, device.device_id)
                for _ in range(2 * spec.num_layers)
            ]
        else:
            self.buffers = [
                ort.OrtValue.ortvalue_from_shape_and_type(shape, dtype, device.ort_device, device.device_id)
                for _ in range(2 * spec.num_layers)
            ]

    def bind(self, binding) -> None:
        for layer in range(self.spec.num_layers):
            past_k, past_v, present_k, present_v = self.spec.names(layer)
            key, value = self.buffers[2 * layer], self.buffers[2 * layer + 1]
            binding.bind_ortvalue_input(past_k, key)
            binding.bind_ortvalue_output(present_k, key)
            binding.bind_ortvalue_input(past_v, value)
            binding.bind_ortvalue_output(present_v, value)
