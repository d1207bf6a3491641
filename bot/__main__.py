"""``python -m bot``: the same as the ``glmbot`` command."""

import sys

from bot.cli import main

sys.exit(main())
