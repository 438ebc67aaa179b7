"""`python -m nba ...` is `nba ...`."""

import sys

from nba.cli import main

sys.exit(main())
