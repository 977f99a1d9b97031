"""One Store per database backend, behind backends.base.Store."""
