"""``python -m ui``: the same as the ``persona`` command."""

import sys

from ui.cli import main

sys.exit(main())
