"""``python3 -m ledd.gpiozero_factory --register|--unregister [SITE_DIR]``: see :mod:`.register`."""
import sys

from ledd.gpiozero_factory.register import main

sys.exit(main())
