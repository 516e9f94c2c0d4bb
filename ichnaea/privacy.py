"""The Wi-Fi privacy opt-out: networks whose owners asked not to be mapped.

An access point's owner opts out by putting a marker in the network name
(SSID). Two markers are in use:

* ``_nomap``, Google's convention: "add ``_nomap`` at the end of the Wi-Fi
  network name" (https://support.google.com/maps/answer/1725632). Apple,
  WiGLE and beaconDB honour it; Mozilla's original service left it to its
  stumbler clients (spec pipeline.md section 24 item 19, replaced by this).
* ``_optout``, from Microsoft's Wi-Fi Sense era, which beaconDB
  (``normalize_ssid``) and Google's Android location client honour as well.

An opted-out network is never learned and never leaves the service: it is
removed from a report where the report enters (submit parsing), where
reports are fanned out to the export and archive queues, before any export
body is built, and where the internal pipeline turns reports into
observations, so the rule holds whatever path a report took (a submission,
a locate query report, a replayed archive, a queue another producer filled).

Matching, decided here:

* **Anywhere in the name, not only at the end.** Routers broadcast the
  5 GHz band of ``Home_nomap`` as ``Home_nomap_5G``; the owner clearly
  opted out. beaconDB (``ssid.contains("_nomap")``) and Google's location
  client (``contains`` on the lower-cased name) match anywhere too.
* **Case-insensitively.** ``FOO_NOMAP`` is the same owner's request; SSIDs
  are free text typed on router web pages, and Google's client lower-cases
  before matching. Dropping a network the owner did not mean to hide costs
  one access point of coverage; keeping one they did costs their privacy.
* NUL characters are removed first (some scanners pad SSIDs with them),
  as beaconDB does.

A missing or non-string SSID is not an opt-out (hidden networks carry no
name). The locate API still answers queries that include opted-out
networks; only what would be stored is filtered.
"""

from __future__ import annotations

from typing import Any, Final

OPT_OUT_MARKERS: Final = ("_nomap", "_optout")
WIFI_LIST: Final = "wifiAccessPoints"


def is_opted_out(ssid: object) -> bool:
    """Whether a Wi-Fi network name asks not to be mapped (see the module docs)."""
    if not isinstance(ssid, str) or "_" not in ssid:
        return False
    name = ssid.replace("\0", "").lower()
    return any(marker in name for marker in OPT_OUT_MARKERS)


def _opted_out_entry(entry: object) -> bool:
    return isinstance(entry, dict) and is_opted_out(entry.get("ssid"))


def strip_opted_out(report: Any) -> Any:
    """The v2-shaped report without its opted-out Wi-Fi networks.

    Returns ``report`` itself when it has none (the common case costs one
    scan and no copy), otherwise a shallow copy with a new Wi-Fi list.
    Anything that is not a report with a Wi-Fi list is returned unchanged.
    """
    if not isinstance(report, dict):
        return report
    wifi = report.get(WIFI_LIST)
    if not isinstance(wifi, list) or not any(_opted_out_entry(entry) for entry in wifi):
        return report
    return {**report, WIFI_LIST: [entry for entry in wifi if not _opted_out_entry(entry)]}
