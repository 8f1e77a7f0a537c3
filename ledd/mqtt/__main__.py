"""``python3 -m ledd.mqtt`` is ``ledd-mqtt``."""
import sys

from ledd.mqtt.main import main

sys.exit(main())
