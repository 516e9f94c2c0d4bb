"""Limits and parameters of the locate API (spec locate.md, appendix A).

Units are in the names: ``_M`` metres, ``_MS`` milliseconds, ``_DBM``
decibel-milliwatts, ``_MHZ`` megahertz.
"""

from __future__ import annotations

import math
from enum import Enum
from typing import Final

from ichnaea.enums import Radio

DEGREE_DECIMAL_PLACES: Final = 7

MIN_AGE_MS: Final = -3_600_000
MAX_AGE_MS: Final = 3_600_000
# Ages are compared by magnitude and never below this (a missing age counts as 1 s).
MIN_WEIGHT_AGE_MS: Final = 1000

MIN_WIFIS_IN_QUERY: Final = 2
MIN_BLUES_IN_QUERY: Final = 2
# The most networks of one type a query looks up (networks, counted after
# validation and deduplication): beyond them only the strongest signals are
# kept. A real scan holds a few dozen; the clustering uses at most 20 Wi-Fi
# and 10 Bluetooth networks, so these change no answer while bounding the
# database work of one request (a 2 MB body can hold 35,000 networks).
MAX_WIFIS_IN_QUERY: Final = 100
MAX_BLUES_IN_QUERY: Final = 100
# Full cells and cell areas, each.
MAX_CELLS_IN_QUERY: Final = 50

MAX_WIFI_CLUSTER_M: Final = 500.0
# Two beacons one phone hears are at most twice a beacon's range (~100 m)
# apart: 200 m, not the original's 100 m, which split such pairs into two
# clusters of one beacon each and so left the query unanswered (issue 11).
MAX_BLUE_CLUSTER_M: Final = 200.0
MAX_WIFIS_IN_CLUSTER: Final = 20
MAX_BLUES_IN_CLUSTER: Final = 10

WIFI_MIN_ACCURACY_M: Final = 10.0
WIFI_MAX_ACCURACY_M: Final = 500.0
BLUE_MIN_ACCURACY_M: Final = 10.0
BLUE_MAX_ACCURACY_M: Final = 50.0
CELL_MIN_ACCURACY_M: Final = 1000.0
CELL_MAX_ACCURACY_M: Final = 50_000.0
AREA_MIN_ACCURACY_M: Final = 50_000.0
AREA_MAX_ACCURACY_M: Final = 500_000.0
# A station's radius is never taken below this when clustering.
MIN_NETWORK_RADIUS_M: Final = 10.0

MIN_WIFI_CHANNEL: Final = 1
MAX_WIFI_CHANNEL: Final = 199
MIN_WIFI_FREQUENCY_MHZ: Final = 2400
MAX_WIFI_FREQUENCY_MHZ: Final = 5999
MIN_WIFI_SIGNAL_DBM: Final = -100
MAX_WIFI_SIGNAL_DBM: Final = -10
MIN_WIFI_SNR: Final = 1
MAX_WIFI_SNR: Final = 100
MIN_BLUE_SIGNAL_DBM: Final = -127
MAX_BLUE_SIGNAL_DBM: Final = 0

MIN_MNC: Final = 0
MAX_MNC: Final = 999
MIN_LAC: Final = 1
MAX_LAC: Final = 65533
# 5G NR tracking area codes are 24 bits.
MAX_NR_TAC: Final = (1 << 24) - 1
MIN_CID: Final = 1
MAX_CID: Final = (1 << 28) - 1
MAX_CID_GSM: Final = 65535
# 5G NR cell identities (NCI) are 36 bits.
MAX_NR_CID: Final = (1 << 36) - 1
MIN_PSC: Final = 0
MAX_PSC: Final = 511
MAX_PSC_LTE: Final = 503
MAX_PCI_NR: Final = 1007
MIN_CELL_TA: Final = 0
MAX_CELL_TA: Final = 63
MIN_CELL_SIGNAL_DBM: Final = -140
MAX_CELL_SIGNAL_DBM: Final = -25
# Per-radio signal ranges; the lower bound is also the default signal.
CELL_SIGNAL_RANGE_DBM: Final = {
    Radio.gsm: (-113, -51),
    Radio.wcdma: (-121, -25),
    Radio.lte: (-140, -43),
    Radio.nr: (-156, -31),
}

FALLBACK_SCORE: Final = 10.0
FALLBACK_LACF_SCORE: Final = 5.0

WIFI_TEST_MAC: Final = "01005e901000"


class DataAccuracy(float, Enum):
    """Accuracy classes in metres; a smaller value is a better class."""

    high = 500.0
    medium = 50_000.0
    low = 40_000_000.0  # the Earth's circumference
    none = math.inf

    @classmethod
    def from_number(cls, accuracy_m: float | None) -> DataAccuracy:
        if accuracy_m is None or math.isnan(accuracy_m):
            return cls.none
        for level in (cls.high, cls.medium, cls.low):
            if accuracy_m <= level.value:
                return level
        return cls.none
