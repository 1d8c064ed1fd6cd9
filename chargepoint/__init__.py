"""A charging station: EVSEs, connectors, an EV battery model, a signing meter, the OCPP client."""
