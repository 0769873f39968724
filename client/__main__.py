"""``python -m client``: the same as ``corehour-client``."""

import sys

from client.cli import main

sys.exit(main())
