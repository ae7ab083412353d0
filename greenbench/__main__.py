import sys

from greenbench.cli import main

sys.exit(main())
