"""``python -m bot``: the same as the ``glmbot`` command."""

import sys

from bot.launch import main

sys.exit(main())
