"""Every power source the agent knows, in the order ``auto`` tries them (module:class).

Add a sensor: one backend file in this package (a ``PowerSource`` subclass, see base.py) and
one line here. Names only, no imports: the configuration validates against this list and
:mod:`.factory` loads the classes.
"""

from __future__ import annotations

from typing import Dict

#: name -> "module:Class" under edge_agent.sensing, in the order ``auto`` tries them.
SOURCES: Dict[str, str] = {
    # First: configured only on an emulated board (a local run's agent), never on a board.
    "emulated-board": "emulated_board:EmulatedBoardSource",
    "ina3221-hwmon": "ina3221_hwmon:Ina3221HwmonSource",
    "ina3221-iio": "ina3221_iio:Ina3221IioSource",
    "jtop": "jetson_stats:JtopSource",
    "rpi5-pmic": "rpi_pmic:RpiPmicSource",
    "ina2xx": "ina2xx:Ina2xxSource",
    "rapl": "rapl:RaplSource",
    "battery": "battery:BatterySource",
}

#: The explicit fallback, always last: a utilisation model labelled ``estimated``.
FALLBACK = ("estimated", "estimated:EstimatedSource")
