"""Run the demo API in the foreground: ``python -m demo --port 8765``."""

import sys

from demo.api import main

if __name__ == "__main__":
    sys.exit(main())
