"""``python -m initsim.cli``: the ``initsim`` command."""

import sys

from initsim.cli import main

sys.exit(main())
