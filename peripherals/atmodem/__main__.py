import sys

from atmodem.cli import main

sys.exit(main())
