"""Building blocks shared by the architectures in ``blindsr.nets``."""
