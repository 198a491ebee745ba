"""`python -m localcloud` (what `scripts/local-cloud` runs)."""

import sys

from localcloud import main

sys.exit(main())
