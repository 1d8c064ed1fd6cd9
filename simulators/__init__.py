"""Fleets and scenarios: many stations and EVs driving the CSMS."""
