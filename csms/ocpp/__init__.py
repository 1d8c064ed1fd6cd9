"""Version-independent OCPP-J machinery: frames, schema validation, versions."""
