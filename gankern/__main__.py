"""``python -m gankern``: the same as the ``gankern`` command."""

from gankern.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
