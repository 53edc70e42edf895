"""``python -m face2face``: the same as the ``face2face`` command."""

import sys

from face2face.cli import main

sys.exit(main())
