"""``python -m tenrusl_operator``: the same as ``tenrusl operator``."""

import sys

from tenrusl.cli import main

sys.exit(main(["operator", *sys.argv[1:]]))
