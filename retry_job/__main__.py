"""``python -m retry_job [once|run|one|replay|unlock|schedule] ...``: same as `tenrusl retry`."""

import sys

from retry_job.cli import main

sys.exit(main())
