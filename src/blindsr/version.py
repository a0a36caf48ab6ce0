"""The version of the installed ``blindsr`` distribution, read from its package metadata.

A bottom-layer module (it imports nothing of blindsr), so that any layer can stamp what it writes (checkpoint
manifests, release files, ONNX models) without importing the top-level package; ``blindsr.__version__`` is this
value, loaded lazily so that ``import blindsr`` does not pay for :mod:`importlib.metadata`.

>>> from blindsr.version import __version__
>>> __version__
'0.1.0'
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Final

__all__ = ["UNKNOWN_VERSION", "__version__"]

UNKNOWN_VERSION: Final = "0+unknown"
"""The version reported when the distribution's metadata is missing (the sources are on ``sys.path`` but the
package is not installed): a valid PEP 440 version that sorts before every release."""


def _installed_version() -> str:
    try:
        return version("blindsr")
    except PackageNotFoundError:
        return UNKNOWN_VERSION


__version__: Final = _installed_version()
"""The installed distribution's version (``project.version`` of ``pyproject.toml`` when it was installed)."""
