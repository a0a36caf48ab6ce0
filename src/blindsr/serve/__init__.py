"""The web demo, ``blindsr serve``: upload an image, pick a model and a scale, compare, download.

* :func:`create_app` (``app.py``): the FastAPI application (FastAPI is imported when it is called, so
  ``import blindsr.serve`` works without the ``demo`` extra);
* ``jobs.py``: the work without HTTP: the models on offer, one upscaling job, the temporary result folder;
* ``page.py``: the single page, inline CSS and vanilla JavaScript, nothing loaded from elsewhere.

Install the extra with ``pip install -e '.[demo]'`` in the blindsr clone.
"""

from __future__ import annotations

from blindsr.serve.app import (
    DEFAULT_MAX_JOB_MACS,
    DEFAULT_MAX_PIXELS,
    DEFAULT_MAX_RESULTS,
    DEFAULT_MAX_UPLOAD_BYTES,
    create_app,
)
from blindsr.serve.jobs import (
    JobCancelledError,
    JobError,
    ModelEntry,
    ResultStore,
    default_upscaler_factory,
    find_model,
    resolve_models,
)

__all__ = [
    "DEFAULT_MAX_JOB_MACS",
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_MAX_RESULTS",
    "DEFAULT_MAX_UPLOAD_BYTES",
    "JobCancelledError",
    "JobError",
    "ModelEntry",
    "ResultStore",
    "create_app",
    "default_upscaler_factory",
    "find_model",
    "resolve_models",
]
