"""`python -m brook.broker broker ...` is the same as the `brook` command."""

import sys

from .cli import main

sys.exit(main())
