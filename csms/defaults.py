"""Files the CSMS writes into a new data directory so that it runs out of the box."""

from __future__ import annotations

# A day of time-of-use prices (micro-units of EUR per kWh). In the evening peak the export
# price beats the dispatch threshold, so V2G-willing EVs discharge; at night they charge.
DEFAULT_TARIFF_YAML = """\
# Time-of-use tariff: prices in micro-units of the currency per kWh, times in `timezone`.
id: tou-default
currency: EUR
timezone: UTC
daily:
  - {start: "00:00", import_price: 180000, export_price: 60000}
  - {start: "06:00", import_price: 280000, export_price: 90000}
  - {start: "10:00", import_price: 220000, export_price: 70000}
  - {start: "16:00", import_price: 390000, export_price: 420000}
  - {start: "20:00", import_price: 300000, export_price: 110000}
  - {start: "22:00", import_price: 180000, export_price: 60000}
"""
