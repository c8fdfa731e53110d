"""``python -m llmsizing …``: the same command line as ``llmsizing``."""

import sys

from llmsizing.cli import main

sys.exit(main())
