"""``python -m provision``."""

from __future__ import annotations

import sys

from provision.cli import main

sys.exit(main())
