"""``python -m chuizi_async.testing``: the simulator as a server of its own, for any language.

Prints the API's base URL, a key it accepts and the media host, then serves until Ctrl-C or
SIGTERM. ``chuizi simulate`` is the same command.
"""

from __future__ import annotations

import sys

from ._standalone import main

if __name__ == "__main__":
    sys.exit(main())
