"""``python -m acp_bridge`` runs the ``acp-bridge`` command."""

import sys

from acp_bridge.cli.main import main

sys.exit(main())
