"""``python -m tinycnn``: the ``tinycnn`` command line, for an environment without the script."""

import sys

from .cli import main

sys.exit(main())
