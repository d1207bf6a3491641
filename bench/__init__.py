"""Load benchmark of the bot in HTTP mode against real Redis: ``python -m bench`` (see ``__main__``)."""
