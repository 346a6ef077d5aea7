"""``python -m clust``: the ``clust`` command."""

from __future__ import annotations

import sys

from clust.cli import main

sys.exit(main())
