"""``python -m tenrusl ...``: the same as the ``tenrusl`` command."""

import sys

from tenrusl.cli import main

sys.exit(main())
