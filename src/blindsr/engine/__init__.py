"""The training engine: one loop for every method (see `blindsr.engine.loop.fit`)."""
