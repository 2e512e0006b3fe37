"""``python -m agent``: the same as the ``persona`` command."""

import sys

from agent.cli import main

sys.exit(main())
