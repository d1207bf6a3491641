"""Redis: the connection (real or embedded), its error translator, thread histories, once-only claims."""
