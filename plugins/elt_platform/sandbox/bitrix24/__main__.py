"""Entry point of ``python -m elt_platform.sandbox.bitrix24``; all logic is in ``cli.main``."""

from elt_platform.sandbox.bitrix24.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
