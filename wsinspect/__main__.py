import sys

from wsinspect.cli import main

sys.exit(main())
