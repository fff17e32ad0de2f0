"""Triton kernels of the gankern ops (one module per op)."""
