"""The OCPP server: connections, security, one module per functional block, sessions, storage."""
