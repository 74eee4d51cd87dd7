"""`python -m irbridge` is the `irbridge` command."""

import sys

from .cli import main

sys.exit(main())
