"""Per-format converters from decoded log rows to normalized conversation dicts.

``FORMATS`` is the ordered list the reader core tries when ``format = "auto"``: each
module's ``detect`` votes on the first decodable object rows of a file (up to 8 that some
detector accepts) and the module with most votes wins, ties going to the earlier module.
More specific formats come first; ``openai`` (any row with a ``messages`` list) is the
catch-all and stays last.
The contract every module follows is documented in :mod:`deploysim.sources.formats.base`.
"""

from __future__ import annotations

from deploysim.sources.formats import hh, lmsys, oasst, openai, sharegpt, tau, wildchat
from deploysim.sources.formats.base import FormatModule, RowError

FORMATS: tuple[FormatModule, ...] = (
    oasst,
    tau,
    hh,
    sharegpt,
    wildchat,
    lmsys,
    openai,
)

__all__ = ["FORMATS", "FormatModule", "RowError"]
