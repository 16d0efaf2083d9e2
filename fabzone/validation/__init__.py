"""Upload validation as pure functions: scan a G-code file once, check the facts against each profile.

```python
facts = scan_file(path)                      # one streaming pass, machine-independent
result = check(facts, profile)               # cheap, per profile
results = validate(path, profiles)           # scan once, check each: {profile.id: result}
```

A `Reason` carries a stable `code` (catalogs in fabzone/locales/), the 1-based file `line` where there
is one, and `params` for the message; `reason.message("it")` renders it. File-level problems
(empty, binary, not G-code, truncated) are in every profile's result. At most 20 reasons per code
are listed, then one `validation.more` reason with the count of the rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from fabzone.validation.check import check
from fabzone.validation.model import CODES, Analysis, Box, Reason, ValidationResult
from fabzone.validation.scan import Facts, scan_file

if TYPE_CHECKING:
    from drivers.profiles import Profile

__all__ = [
    "CODES",
    "Analysis",
    "Box",
    "Facts",
    "Reason",
    "ValidationResult",
    "check",
    "scan_file",
    "validate",
]


def validate(
    path: Path, profiles: Sequence[Profile], *, max_bytes: int | None = None
) -> dict[str, ValidationResult]:
    """Scan `path` once (with a time estimate for each profile's motion) and check it per profile."""
    facts = scan_file(path, max_bytes=max_bytes, profiles=profiles)
    return {p.id: check(facts, p) for p in profiles}
