import sys

from claimstream.cli.main import main

sys.exit(main())
