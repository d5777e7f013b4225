"""``python -m slicevid.cli`` (and ``torchrun -m slicevid.cli``) run the command line."""

import sys

from . import main

sys.exit(main())
