"""reverso: Reverse Preference Optimization for complex multi-constraint instruction following.

Importing reverso sets the offline environment (telemetry off, no hub access; telemetry.OFFLINE_ENV) for
anything it then loads, unless the user already chose a value: the one place it is set.
"""

from reverso.telemetry import disable_telemetry

__version__ = "0.1.0"

disable_telemetry()
