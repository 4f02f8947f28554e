"""Calls sys.exit at import: must be listed as unavailable, not end the process."""

import sys

sys.exit("plugin gave up at import")
