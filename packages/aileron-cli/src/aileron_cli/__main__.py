"""``python -m aileron_cli`` runs the ``aileron`` command."""

from __future__ import annotations

import sys

from aileron_cli.cli.main import main

sys.exit(main())
