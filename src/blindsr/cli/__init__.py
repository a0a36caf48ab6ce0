"""Command-line interface (``blindsr``)."""
