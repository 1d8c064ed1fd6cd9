"""Versioned schema migrations: each entry is applied once, in order, in one transaction."""

from __future__ import annotations

from collections.abc import Callable

from csms.store import tallies
from csms.store.engine import SyncConnection

MIGRATIONS: list[str] = [
    # 1: the foundation
    """
    CREATE TABLE stations (
        station_id     TEXT PRIMARY KEY,
        password_hash  TEXT NOT NULL,
        meter_key      TEXT,
        created_at     TEXT NOT NULL,
        vendor         TEXT,
        model          TEXT,
        serial_number  TEXT,
        firmware       TEXT,
        last_boot_at   TEXT,
        last_seen_at   TEXT
    );
    CREATE TABLE connections_log (
        id          INTEGER PRIMARY KEY,
        station_id  TEXT NOT NULL,
        event       TEXT NOT NULL,
        at          TEXT NOT NULL,
        detail      TEXT
    );
    CREATE INDEX connections_log_station ON connections_log (station_id, at);
    CREATE TABLE connector_status (
        station_id    TEXT NOT NULL,
        evse_id       INTEGER NOT NULL,
        connector_id  INTEGER NOT NULL,
        status        TEXT NOT NULL,
        at            TEXT NOT NULL,
        PRIMARY KEY (station_id, evse_id, connector_id)
    );
    CREATE TABLE id_tokens (
        id_token    TEXT NOT NULL,
        type        TEXT NOT NULL,
        status      TEXT NOT NULL,
        payment     TEXT NOT NULL DEFAULT 'invoice',
        expires_at  TEXT,
        created_at  TEXT NOT NULL,
        PRIMARY KEY (id_token, type)
    );
    CREATE TABLE sessions (
        station_id       TEXT NOT NULL,
        transaction_id   TEXT NOT NULL,
        state            TEXT NOT NULL,
        started_seen     INTEGER NOT NULL DEFAULT 0,
        started_at       TEXT,
        ended_at         TEXT,
        evse_id          INTEGER,
        connector_id     INTEGER,
        id_token         TEXT,
        id_token_type    TEXT,
        stopped_reason   TEXT,
        last_seq_no      INTEGER NOT NULL,
        event_count      INTEGER NOT NULL DEFAULT 0,
        offline_events   INTEGER NOT NULL DEFAULT 0,
        updated_at       TEXT NOT NULL,
        PRIMARY KEY (station_id, transaction_id)
    );
    CREATE TABLE transaction_events (
        station_id      TEXT NOT NULL,
        transaction_id  TEXT NOT NULL,
        seq_no          INTEGER NOT NULL,
        event_type      TEXT NOT NULL,
        trigger_reason  TEXT NOT NULL,
        offline         INTEGER NOT NULL,
        timestamp       TEXT NOT NULL,
        received_at     TEXT NOT NULL,
        raw             TEXT NOT NULL,
        PRIMARY KEY (station_id, transaction_id, seq_no)
    );
    CREATE TABLE meter_samples (
        id              INTEGER PRIMARY KEY,
        station_id      TEXT NOT NULL,
        transaction_id  TEXT,
        evse_id         INTEGER NOT NULL,
        seq_no          INTEGER,
        timestamp       TEXT NOT NULL,
        measurand       TEXT NOT NULL,
        phase           TEXT,
        context         TEXT,
        location        TEXT,
        value           INTEGER NOT NULL,
        unit            TEXT NOT NULL,
        signed          TEXT
    );
    CREATE INDEX meter_samples_tx ON meter_samples (station_id, transaction_id, measurand);
    CREATE TABLE reports (
        id          INTEGER PRIMARY KEY,
        station_id  TEXT NOT NULL,
        request_id  INTEGER NOT NULL,
        seq_no      INTEGER NOT NULL,
        generated_at TEXT NOT NULL,
        raw         TEXT NOT NULL,
        UNIQUE (station_id, request_id, seq_no)
    );
    CREATE TABLE security_events (
        id          INTEGER PRIMARY KEY,
        station_id  TEXT NOT NULL,
        type        TEXT NOT NULL,
        timestamp   TEXT NOT NULL,
        tech_info   TEXT
    );
    """,
    # 2: settlements, their outbox, identities with pseudonyms and encrypted personal data
    """
    ALTER TABLE id_tokens ADD COLUMN pseudonym TEXT;
    ALTER TABLE id_tokens ADD COLUMN personal BLOB;
    CREATE TABLE settlements (
        settlement_id   TEXT PRIMARY KEY,
        station_id      TEXT NOT NULL,
        transaction_id  TEXT NOT NULL,
        kind            TEXT NOT NULL,
        status          TEXT NOT NULL,
        reason          TEXT,
        corrects        TEXT,
        ev              TEXT,
        import_wh       INTEGER,
        export_wh       INTEGER,
        amount          INTEGER,
        currency        TEXT,
        body            TEXT,
        tx              BLOB,
        created_at      TEXT NOT NULL,
        committed_at    TEXT,
        block_height    INTEGER,
        block_hash      TEXT,
        tx_index        INTEGER,
        receipt         TEXT
    );
    CREATE UNIQUE INDEX settlements_one_per_session
        ON settlements (station_id, transaction_id) WHERE kind = 'settlement';
    CREATE INDEX settlements_status ON settlements (status, created_at);
    CREATE TABLE outbox (
        settlement_id    TEXT PRIMARY KEY REFERENCES settlements (settlement_id),
        attempts         INTEGER NOT NULL DEFAULT 0,
        next_attempt_at  TEXT NOT NULL,
        last_error       TEXT
    );
    """,
    # 3: OCPP 1.6 transaction ids and event sequence numbers; OCPP 2.1 EV charging needs
    """
    CREATE TABLE ocpp16_transactions (
        transaction_id  INTEGER PRIMARY KEY AUTOINCREMENT,
        station_id      TEXT NOT NULL,
        connector_id    INTEGER NOT NULL,
        id_tag          TEXT NOT NULL,
        meter_start     INTEGER NOT NULL,
        started_at      TEXT NOT NULL,
        reservation_id  INTEGER,
        created_at      TEXT NOT NULL,
        UNIQUE (station_id, connector_id, id_tag, started_at, meter_start)
    );
    CREATE TABLE ocpp16_event_keys (
        station_id      TEXT NOT NULL,
        transaction_id  INTEGER NOT NULL,
        event_key       TEXT NOT NULL,
        seq_no          INTEGER NOT NULL,
        PRIMARY KEY (station_id, transaction_id, event_key),
        UNIQUE (station_id, transaction_id, seq_no)
    );
    CREATE TABLE ev_charging_needs (
        id                  INTEGER PRIMARY KEY,
        station_id          TEXT NOT NULL,
        evse_id             INTEGER NOT NULL,
        received_at         TEXT NOT NULL,
        timestamp           TEXT,
        requested_transfer  TEXT NOT NULL,
        available_transfer  TEXT,
        control_mode        TEXT,
        departure_time      TEXT,
        target_energy_wh    INTEGER,
        min_energy_wh       INTEGER,
        max_energy_wh       INTEGER,
        min_v2x_energy_wh   INTEGER,
        max_v2x_energy_wh   INTEGER,
        target_soc          INTEGER,
        max_charge_w        INTEGER,
        max_discharge_w     INTEGER,
        min_discharge_w     INTEGER,
        raw                 TEXT NOT NULL
    );
    CREATE INDEX ev_charging_needs_evse ON ev_charging_needs (station_id, evse_id, id);
    """,
    # per-station settings: how tolerant the CSMS is of the station's deviations
    """
    CREATE TABLE station_settings (
        station_id  TEXT PRIMARY KEY REFERENCES stations (station_id) ON DELETE CASCADE,
        tolerance   TEXT NOT NULL DEFAULT 'strict' CHECK (tolerance IN ('strict', 'tolerant'))
    );
    """,
    # operators and auditors of the review API and dashboard (passwords as scrypt hashes)
    """
    CREATE TABLE operators (
        name           TEXT PRIMARY KEY,
        password_hash  TEXT NOT NULL,
        role           TEXT NOT NULL CHECK (role IN ('operator', 'auditor')),
        created_at     TEXT NOT NULL
    );
    """,
    # per-station security profile (NULL: the CSMS's own), e.g. a legacy station on Basic auth
    """
    ALTER TABLE station_settings ADD COLUMN security_profile INTEGER
        CHECK (security_profile IN (1, 2, 3));
    """,
    # who re-settled a flagged session, when, and what came of it
    """
    CREATE TABLE resettlements (
        id              INTEGER PRIMARY KEY AUTOINCREMENT,
        settlement_id   TEXT NOT NULL,
        by_name         TEXT NOT NULL,
        at              TEXT NOT NULL,
        outcome         TEXT NOT NULL,
        reason          TEXT
    );
    CREATE INDEX resettlements_settlement ON resettlements (settlement_id, id);
    """,
    # per-station dispatch caps (W, NULL: none) and whether a 2.0.1 station discharges
    """
    ALTER TABLE station_settings ADD COLUMN max_charge_w INTEGER CHECK (max_charge_w >= 0);
    ALTER TABLE station_settings ADD COLUMN max_discharge_w INTEGER CHECK (max_discharge_w >= 0);
    ALTER TABLE station_settings ADD COLUMN discharge TEXT NOT NULL DEFAULT 'none'
        CHECK (discharge IN ('none', '2.0.1-negative-limit'));
    """,
    # what stations report beyond transactions (NotifyEvent, charging limits, DER, ...):
    # the last few per station (csms.store.station_events bounds it)
    """
    CREATE TABLE station_events (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        station_id   TEXT NOT NULL,
        action       TEXT NOT NULL,
        evse_id      INTEGER,
        summary      TEXT NOT NULL,
        received_at  TEXT NOT NULL,
        raw          TEXT NOT NULL
    );
    CREATE INDEX station_events_station ON station_events (station_id, id);
    """,
    # what each station reported its EVSEs can do (EVSE 0: the whole station), latest per kind,
    # and the 1.6 configuration key holding a station's power rating (csms.evse_limits)
    """
    CREATE TABLE evse_capabilities (
        station_id  TEXT NOT NULL REFERENCES stations (station_id) ON DELETE CASCADE,
        evse_id     INTEGER NOT NULL,
        kind        TEXT NOT NULL CHECK (kind IN ('power', 'bidirectional')),
        value       INTEGER NOT NULL,
        source      TEXT NOT NULL,
        updated_at  TEXT NOT NULL,
        PRIMARY KEY (station_id, evse_id, kind)
    );
    ALTER TABLE station_settings ADD COLUMN power_key TEXT;
    """,
    # where each transaction stands (csms.running), stored with each event: O(1) per event
    """
    CREATE TABLE transaction_progress (
        station_id       TEXT NOT NULL,
        transaction_id   TEXT NOT NULL,
        samples          INTEGER NOT NULL,
        dropped          INTEGER NOT NULL,
        reading_at       TEXT,
        import_wh        INTEGER,
        export_wh        INTEGER,
        milli            TEXT NOT NULL,
        previous_at      TEXT,
        first_at         TEXT,
        first_import_wh  INTEGER,
        first_export_wh  INTEGER,
        import_low       INTEGER,
        export_low       INTEGER,
        latest_at        TEXT,
        soc              INTEGER,
        soc_at           TEXT,
        PRIMARY KEY (station_id, transaction_id)
    );
    """,
    # a station's rated power (W, NULL: max_station_power_w), for settlement plausibility
    """
    ALTER TABLE station_settings ADD COLUMN max_power_w INTEGER CHECK (max_power_w > 0);
    """,
    # dashboard sessions logged out before their cookie expires (SHA-256 of the cookie)
    """
    CREATE TABLE revoked_web_sessions (
        digest      TEXT PRIMARY KEY,
        expires_at  INTEGER NOT NULL
    );
    """,
    # the chain page reads settlements by block, newest first
    """
    CREATE INDEX settlements_block ON settlements (block_height);
    """,
    # the outbox claimed by one CSMS process at a time: who, and until when (a lease)
    """
    ALTER TABLE outbox ADD COLUMN claimed_by TEXT;
    ALTER TABLE outbox ADD COLUMN claimed_until TEXT;
    """,
    # a counter of station registry changes (kept by REGISTRY_TRIGGERS): what a running CSMS
    # watches to notice that another process removed a station or changed its password
    """
    CREATE TABLE registry_changes (
        id       INTEGER PRIMARY KEY CHECK (id = 1),
        version  INTEGER NOT NULL
    );
    INSERT INTO registry_changes (id, version) VALUES (1, 0);
    """,
    # several CSMS processes on one PostgreSQL database (csms.cluster): which process holds
    # each station's live connection (a lease renewed by the holder, on the database's clock),
    # and calls from one process's API to a station connected to another, with their answers
    """
    CREATE TABLE station_leases (
        station_id    TEXT PRIMARY KEY,
        process       TEXT NOT NULL,
        epoch         INTEGER NOT NULL,
        subprotocol   TEXT NOT NULL,
        connected_at  TEXT NOT NULL,
        expires_ms    INTEGER NOT NULL
    );
    CREATE INDEX station_leases_process ON station_leases (process);
    CREATE TABLE station_calls (
        id          INTEGER PRIMARY KEY,
        station_id  TEXT NOT NULL,
        origin      TEXT NOT NULL,
        target      TEXT NOT NULL,
        method      TEXT NOT NULL,
        arguments   TEXT NOT NULL,
        state       TEXT NOT NULL DEFAULT 'pending',
        answer      TEXT,
        created_ms  INTEGER NOT NULL
    );
    CREATE INDEX station_calls_target ON station_calls (target, state);
    """,
    # the newest rows of each station first, and how many each station holds of each kind
    # (csms.store.retention keeps a number per station)
    """
    CREATE INDEX meter_samples_station ON meter_samples (station_id, id)
        WHERE transaction_id IS NULL;
    CREATE INDEX security_events_station ON security_events (station_id, id);
    CREATE INDEX reports_station ON reports (station_id, id);
    CREATE INDEX ev_charging_needs_station ON ev_charging_needs (station_id, id);
    CREATE INDEX connections_log_station_id ON connections_log (station_id, id);
    CREATE TABLE station_retention (
        station_id  TEXT NOT NULL,
        kind        TEXT NOT NULL,
        held        INTEGER NOT NULL,
        pruned      INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (station_id, kind)
    );
    INSERT INTO station_retention (station_id, kind, held)
        SELECT station_id, 'station_events', COUNT(*) FROM station_events GROUP BY station_id;
    INSERT INTO station_retention (station_id, kind, held)
        SELECT station_id, 'meter_values', COUNT(*) FROM meter_samples
        WHERE transaction_id IS NULL GROUP BY station_id;
    INSERT INTO station_retention (station_id, kind, held)
        SELECT station_id, 'security_events', COUNT(*) FROM security_events GROUP BY station_id;
    INSERT INTO station_retention (station_id, kind, held)
        SELECT station_id, 'reports', COUNT(*) FROM reports GROUP BY station_id;
    INSERT INTO station_retention (station_id, kind, held)
        SELECT station_id, 'charging_needs', COUNT(*) FROM ev_charging_needs GROUP BY station_id;
    INSERT INTO station_retention (station_id, kind, held)
        SELECT station_id, 'connection_log', COUNT(*) FROM connections_log GROUP BY station_id;
    """,
    # a session's page reads its settlement and credits, not every settlement
    """
    CREATE INDEX settlements_session ON settlements (station_id, transaction_id);
    """,
    # a verified station password, remembered as an HMAC under the data directory's
    # credential key (csms.credentials): a handshake after a restart costs no scrypt
    """
    ALTER TABLE stations ADD COLUMN password_mac TEXT;
    """,
    # bounded reads for the review pages, the API and /metrics (csms.store.tallies): sessions
    # newest first (all, or one station's), a station's open transactions and its latest live
    # events through an index; settlements by status, the commit latency histogram and each
    # station's session count kept as tallies, so a scrape or a page reads a few rows
    """
    CREATE INDEX sessions_newest ON sessions (started_at, station_id, transaction_id);
    CREATE INDEX sessions_station_newest ON sessions (station_id, started_at, transaction_id);
    CREATE INDEX sessions_open ON sessions (station_id, started_at) WHERE state = 'active';
    CREATE INDEX transaction_events_received
        ON transaction_events (station_id, offline, received_at);
    CREATE TABLE settlement_tally (
        status  TEXT PRIMARY KEY,
        n       INTEGER NOT NULL
    );
    CREATE TABLE station_session_tally (
        station_id  TEXT PRIMARY KEY,
        n           INTEGER NOT NULL
    );
    CREATE TABLE commit_latency_tally (
        bucket  INTEGER PRIMARY KEY,
        n       INTEGER NOT NULL,
        sum_ms  INTEGER NOT NULL
    );
    """,
]

# Python steps run right after the migration of the same number, in its transaction: data
# that portable SQL cannot compute (csms.store.tallies.rebuild parses timestamps).
BACKFILLS: dict[int, Callable[[SyncConnection], None]] = {len(MIGRATIONS): tallies.rebuild}

# The triggers that count station registry changes (a station added or removed, a password
# or station id changed; not a boot or a heartbeat), per engine: trigger syntax is the one
# thing the two engines do not share. Idempotent: applied at every open, after MIGRATIONS.
REGISTRY_TRIGGERS: dict[str, list[str]] = {
    "sqlite": [
        "CREATE TRIGGER IF NOT EXISTS stations_added AFTER INSERT ON stations BEGIN"
        " UPDATE registry_changes SET version = version + 1 WHERE id = 1; END",
        "CREATE TRIGGER IF NOT EXISTS stations_removed AFTER DELETE ON stations BEGIN"
        " UPDATE registry_changes SET version = version + 1 WHERE id = 1; END",
        "CREATE TRIGGER IF NOT EXISTS stations_password_changed"
        " AFTER UPDATE OF station_id, password_hash ON stations"
        " WHEN OLD.password_hash IS NOT NEW.password_hash OR OLD.station_id IS NOT NEW.station_id"
        " BEGIN UPDATE registry_changes SET version = version + 1 WHERE id = 1; END",
    ],
    "postgresql": [
        "CREATE OR REPLACE FUNCTION registry_changed() RETURNS trigger LANGUAGE plpgsql AS $$"
        " BEGIN UPDATE registry_changes SET version = version + 1 WHERE id = 1; RETURN NULL; END"
        " $$",
        "CREATE OR REPLACE TRIGGER stations_added_removed AFTER INSERT OR DELETE ON stations"
        " FOR EACH STATEMENT EXECUTE FUNCTION registry_changed()",
        "CREATE OR REPLACE TRIGGER stations_password_changed"
        " AFTER UPDATE OF station_id, password_hash ON stations FOR EACH ROW"
        " WHEN (OLD.password_hash IS DISTINCT FROM NEW.password_hash"
        " OR OLD.station_id IS DISTINCT FROM NEW.station_id)"
        " EXECUTE FUNCTION registry_changed()",
    ],
}

# The triggers that keep the tallies (csms.store.tallies) as settlements and sessions come and
# go, whichever code writes them. Idempotent, applied at every open like REGISTRY_TRIGGERS.
TALLY_TRIGGERS: dict[str, list[str]] = {
    "sqlite": [
        "CREATE TRIGGER IF NOT EXISTS settlements_tally_added AFTER INSERT ON settlements BEGIN"
        " INSERT INTO settlement_tally (status, n) VALUES (NEW.status, 1)"
        " ON CONFLICT (status) DO UPDATE SET n = n + 1; END",
        "CREATE TRIGGER IF NOT EXISTS settlements_tally_removed AFTER DELETE ON settlements BEGIN"
        " UPDATE settlement_tally SET n = n - 1 WHERE status = OLD.status; END",
        "CREATE TRIGGER IF NOT EXISTS settlements_tally_changed AFTER UPDATE OF status"
        " ON settlements WHEN OLD.status IS NOT NEW.status BEGIN"
        " UPDATE settlement_tally SET n = n - 1 WHERE status = OLD.status;"
        " INSERT INTO settlement_tally (status, n) VALUES (NEW.status, 1)"
        " ON CONFLICT (status) DO UPDATE SET n = n + 1; END",
        "CREATE TRIGGER IF NOT EXISTS sessions_tally_added AFTER INSERT ON sessions BEGIN"
        " INSERT INTO station_session_tally (station_id, n) VALUES (NEW.station_id, 1)"
        " ON CONFLICT (station_id) DO UPDATE SET n = n + 1; END",
        "CREATE TRIGGER IF NOT EXISTS sessions_tally_removed AFTER DELETE ON sessions BEGIN"
        " UPDATE station_session_tally SET n = n - 1 WHERE station_id = OLD.station_id; END",
    ],
    "postgresql": [
        "CREATE OR REPLACE FUNCTION settlements_tally() RETURNS trigger LANGUAGE plpgsql AS $$"
        " BEGIN"
        " IF TG_OP IN ('DELETE', 'UPDATE') THEN"
        " UPDATE settlement_tally SET n = n - 1 WHERE status = OLD.status; END IF;"
        " IF TG_OP IN ('INSERT', 'UPDATE') THEN"
        " INSERT INTO settlement_tally (status, n) VALUES (NEW.status, 1)"
        " ON CONFLICT (status) DO UPDATE SET n = settlement_tally.n + 1; END IF;"
        " RETURN NULL; END $$",
        "CREATE OR REPLACE TRIGGER settlements_tally_added_removed AFTER INSERT OR DELETE"
        " ON settlements FOR EACH ROW EXECUTE FUNCTION settlements_tally()",
        "CREATE OR REPLACE TRIGGER settlements_tally_changed AFTER UPDATE OF status"
        " ON settlements FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)"
        " EXECUTE FUNCTION settlements_tally()",
        "CREATE OR REPLACE FUNCTION sessions_tally() RETURNS trigger LANGUAGE plpgsql AS $$"
        " BEGIN"
        " IF TG_OP = 'DELETE' THEN"
        " UPDATE station_session_tally SET n = n - 1 WHERE station_id = OLD.station_id;"
        " ELSE INSERT INTO station_session_tally (station_id, n) VALUES (NEW.station_id, 1)"
        " ON CONFLICT (station_id) DO UPDATE SET n = station_session_tally.n + 1; END IF;"
        " RETURN NULL; END $$",
        "CREATE OR REPLACE TRIGGER sessions_tally_added_removed AFTER INSERT OR DELETE"
        " ON sessions FOR EACH ROW EXECUTE FUNCTION sessions_tally()",
    ],
}
