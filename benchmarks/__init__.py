"""gankern's benchmarks: ops side by side against the reference and torch.compile.

``python -m benchmarks --help`` runs them (see ``benchmarks/README.md``); each
``benchmarks/bench_<op>.py`` registers one :class:`benchmarks.harness.BenchCase`.
"""
