"""placeholder"""

import os as _os

# torch's (and numba's) OpenMP workers must sleep when idle, not spin: the engine runs its
# stages in threads side by side on few cores, and spinning workers starve them (a window
# solve took many times longer under load). Takes effect if set before torch is first imported.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
