"""``python -m custody.acquisition.sources.bagit BAG``: 0 valid, 1 invalid, 2 usage."""

from __future__ import annotations

import contextlib
import sys

from custody.acquisition.sources.bagit.validator import main

with contextlib.suppress(BrokenPipeError):
    sys.exit(main())
