"""``python -m modelmem``: the command line."""

import sys

from modelmem.cli import main

sys.exit(main())
