import sys

from opsdeck.cli import main

sys.exit(main())
