"""PII out of the places that bypassed the masker: the API-log search index, the Grafana
audit view and the double-booking panel's customer reference.

- Full-text search over API logs ran over the raw bodies, so a search answered whether a
  given email or card number appeared in them, though every view masks both. The document
  is now the request id and the bodies and message with PII removed (the values of JSON
  name and phone fields, emails, card-like digit runs, IPv4/IPv6 addresses, phones); the
  GIN index ``api_logs_search_masked`` holds it (``api.queries.api_logs`` repeats the
  expression exactly) and replaces ``api_logs_search``. Like ``0004_access``, the index is
  built only where the platform schema lives in this database; on a large live platform,
  build it by hand first with ``CREATE INDEX CONCURRENTLY`` under the same name.
- ``ops.grafana_audit_trail`` (read by every Grafana user) showed failed sign-ins with the
  text typed as the user name (a password, now and then) and why they failed ("bad
  two-factor code" says the password was right). A failed sign-in now reads
  "(failed sign-in)" with no role and no reason; the API's audit view keeps the details.
- ``customer_ref`` in ``ops.grafana_recent_double_bookings`` was an unsalted md5 of a
  sequential id, reversible by hashing every id. The exporter now stores a keyed hash
  (HMAC-SHA256 under ``exporter.customer_ref_key``, which never reaches the database) in
  ``ops.kpi_booking_conflicts.customer_ref``; the view shows that. Rows counted before this
  revision, or while no key is set, have none.

Revision ID: 0018_masked_search
Revises: 0003_kpi_engine, 0004_access
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import text

revision = "0018_masked_search"
down_revision = ("0003_kpi_engine", "0004_access")
branch_labels = None
depends_on = None

PII_PATTERNS = (
    (
        r'"(name|first_name|last_name|full_name|given_name|family_name|customer_name|'
        r"billing_name|cardholder_name|card_holder_name|holder_name|account_name|"
        r"account_holder_name|phone|phone_number|mobile|mobile_number|telephone|tel)"
        r'"\s*:\s*("([^"\\]|\\.)*"|\+?[0-9][0-9 ()-]*)',
        "gi",
    ),
    (r"[A-Za-z0-9._%+-]+(@|%40)[A-Za-z0-9.-]+", "g"),
    (r"[0-9]([ -]?[0-9]){8,18}", "g"),
    (r"[0-9]{1,3}(\.[0-9]{1,3}){3}", "g"),
    (r"[0-9A-Fa-f]{0,4}(:[0-9A-Fa-f]{0,4}){2,7}", "g"),
    (r"\+[0-9][0-9 ()-]{6,18}[0-9]", "g"),
    (r"\(?[0-9]{2,5}\)?[ .-][0-9]{3,4}[ .-]?[0-9]{3,4}", "g"),
)
BODIES = (
    "coalesce(request_body, '') || ' ' || coalesce(response_body, '') || ' ' "
    "|| coalesce(error_message, '')"
)


def masked_document() -> str:
    scrubbed = BODIES
    for pattern, flags in PII_PATTERNS:
        scrubbed = f"regexp_replace({scrubbed}, '{pattern}', ' ', '{flags}')"
    return f"to_tsvector('simple'::regconfig, request_id || ' ' || {scrubbed})"


RAW_DOCUMENT = f"to_tsvector('simple'::regconfig, request_id || ' ' || {BODIES})"

VIEWS = """
ALTER TABLE ops.kpi_booking_conflicts ADD COLUMN customer_ref text;

CREATE OR REPLACE VIEW ops.grafana_recent_double_bookings AS
SELECT c.booking_id, c.other_booking_id, c.customer_ref,
       c.resource_id, c.location_id, c.overlap_start, c.overlap_end, c.confirmed_at,
       CASE WHEN c.resolved_at IS NULL THEN 'open' ELSE 'resolved' END AS resolution_status,
       c.resolution, c.resolved_at
FROM ops.kpi_booking_conflicts c;

CREATE OR REPLACE VIEW ops.grafana_audit_trail AS
SELECT at,
       CASE WHEN failed_sign_in THEN '(failed sign-in)' ELSE actor END AS actor,
       CASE WHEN failed_sign_in THEN NULL ELSE actor_role END AS actor_role,
       action, target_type, target_id, outcome,
       CASE WHEN failed_sign_in THEN NULL ELSE reason END AS reason
FROM (SELECT a.*, a.action = 'sign_in' AND a.outcome <> 'ok' AS failed_sign_in
      FROM ops.audit_log a) a;
"""

DOWNGRADE_VIEWS = """
CREATE OR REPLACE VIEW ops.grafana_audit_trail AS
SELECT at, actor, actor_role, action, target_type, target_id, outcome, reason
FROM ops.audit_log;

CREATE OR REPLACE VIEW ops.grafana_recent_double_bookings AS
SELECT c.booking_id, c.other_booking_id,
       'cus_' || left(md5(c.customer_id::text), 8) AS customer_ref,
       c.resource_id, c.location_id, c.overlap_start, c.overlap_end, c.confirmed_at,
       CASE WHEN c.resolved_at IS NULL THEN 'open' ELSE 'resolved' END AS resolution_status,
       c.resolution, c.resolved_at
FROM ops.kpi_booking_conflicts c;

ALTER TABLE ops.kpi_booking_conflicts DROP COLUMN customer_ref;
"""


def _platform_here() -> bool:
    found = op.get_bind().execute(text("SELECT to_regclass('platform.api_logs')")).scalar()
    return found is not None


def upgrade() -> None:
    op.execute(VIEWS)
    if _platform_here():
        op.execute("DROP INDEX IF EXISTS platform.api_logs_search")
        op.execute(
            "CREATE INDEX IF NOT EXISTS api_logs_search_masked ON platform.api_logs "
            f"USING gin ({masked_document()})"
        )


def downgrade() -> None:
    if _platform_here():
        op.execute("DROP INDEX IF EXISTS platform.api_logs_search_masked")
        op.execute(
            "CREATE INDEX IF NOT EXISTS api_logs_search ON platform.api_logs "
            f"USING gin ({RAW_DOCUMENT})"
        )
    op.execute(DOWNGRADE_VIEWS)
