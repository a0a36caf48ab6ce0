"""Network architectures: DMSR (``dmsr.py``), MRDA (``mrda.py``), DASR's DA conv (``dasr.py``), the toy network.

Shared blocks are in ``layers/``. What the rest of the package knows about each network (its id, how release files
store its arguments, how it runs tiled, what its export needs) is its descriptor in ``blindsr.archs``.
"""

from __future__ import annotations

from blindsr.nets.dmsr import DMSRNet
from blindsr.nets.mrda import MetaLearningNetwork, MRDAStudent, MRDATeacher
from blindsr.nets.toy import ToySR

__all__ = ["DMSRNet", "MRDAStudent", "MRDATeacher", "MetaLearningNetwork", "ToySR"]
