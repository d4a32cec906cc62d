"""Quantization variants derived from a full-integer model (weight-bit sweep)."""
