"""The station in OCPP 1.6J: the same EVSEs, meters and session runner, spoken in 1.6.

``configuration`` maps 1.6 configuration keys onto the station's device model, ``payloads``
converts the station's events and readings to 1.6 messages (pure), ``station`` sends them
(StartTransaction / MeterValues / StopTransaction in order, with the CSMS's integer ids),
``client`` answers the CSMS's calls and ``runner`` is the composition root's 1.6 variant.
"""
