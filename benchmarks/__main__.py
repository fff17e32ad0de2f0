"""``python -m benchmarks``: run the registered benchmarks (see :mod:`benchmarks.run_all`)."""

from benchmarks.run_all import main

raise SystemExit(main())
