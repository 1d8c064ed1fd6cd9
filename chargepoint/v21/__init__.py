"""The station in OCPP 2.1: the 2.0.1 station plus V2X (block K of 2.1).

``needs`` builds NotifyEVChargingNeeds with V2X charging parameters from the EV model,
``profiles`` turns a 2.1 SetChargingProfile (``operationMode``, ``setpoint``,
``dischargeLimit``) into the power the EV is asked for (pure), ``station`` sends the needs
at session start and applies setpoints, ``client`` answers SetChargingProfile and
NotifyAllowedEnergyTransfer, ``runner`` is the composition root's 2.1 variant.
"""
