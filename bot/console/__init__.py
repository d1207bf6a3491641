"""``glmbot console``: the terminal front end on the same conversation service."""
