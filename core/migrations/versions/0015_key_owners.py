"""People, not principals: every API key belongs to a user, a payout change names the users
who asked and approved, and Slack users map to opsdeck users.

- ``ops.api_keys.user_id`` (NOT NULL): the user a key acts for. A key dies with its user's
  account (authentication joins the user and refuses a disabled one), and two keys of one
  user, or one key before and after rotation, are still one person. Keys created before
  this revision belong to nobody and cannot be tied to a person, so this revision
  **deletes them**: they stop working at once and must be created again with
  ``opsdeck api-keys create --user NAME``. Their creation, rotation and revocation stay in
  the audit log under their prefixes.
- ``ops.payout_suspensions.requested_by_user`` / ``approved_by_user``: the two-person rule
  compares user ids, and the database refuses an approval by the requester. A request
  older than ``incidents.approval_ttl_seconds`` becomes ``expired``: neither approvable nor
  blocking. Requests still pending now name no user and could never be approved, so they
  expire here.
- ``ops.slack_users``: Slack team id + Slack user id (never the display name, which its
  owner can change) → the opsdeck user a button click acts as, managed by
  ``opsdeck slack-users``. An unmapped click is refused.

Revision ID: 0015_key_owners
Revises: 0006_incidents
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0015_key_owners"
down_revision = "0006_incidents"
branch_labels = ("key_owners",)
depends_on = None

UPGRADE = """
-- In one statement, so that replaced_by (a reference between these rows) holds throughout.
DELETE FROM ops.api_keys;
ALTER TABLE ops.api_keys ADD COLUMN user_id bigint NOT NULL REFERENCES ops.users (id);
CREATE INDEX api_keys_user ON ops.api_keys (user_id);

ALTER TABLE ops.payout_suspensions
    DROP CONSTRAINT payout_suspensions_status_check,
    ADD CONSTRAINT payout_suspensions_status_check
        CHECK (status IN ('pending', 'approved', 'expired')),
    ADD COLUMN requested_by_user bigint REFERENCES ops.users (id),
    ADD COLUMN approved_by_user bigint REFERENCES ops.users (id),
    ADD CONSTRAINT payout_suspensions_two_people
        CHECK (approved_by_user IS NULL OR approved_by_user <> requested_by_user);
-- From here on an approval names both people; approvals made before name only principals.
ALTER TABLE ops.payout_suspensions ADD CONSTRAINT payout_suspensions_people
    CHECK (status <> 'approved' OR (requested_by_user IS NOT NULL
                                    AND approved_by_user IS NOT NULL)) NOT VALID;
UPDATE ops.payout_suspensions SET status = 'expired' WHERE status = 'pending';

CREATE TABLE ops.slack_users (
    team_id       text COLLATE "C" NOT NULL CHECK (team_id ~ '^[A-Z0-9]{1,32}$'),
    slack_user_id text COLLATE "C" NOT NULL CHECK (slack_user_id ~ '^[A-Z0-9]{1,32}$'),
    user_id       bigint NOT NULL REFERENCES ops.users (id),
    created_by    text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (team_id, slack_user_id)
);
CREATE INDEX slack_users_user ON ops.slack_users (user_id);
"""

DOWNGRADE = """
DROP TABLE ops.slack_users;
-- The old status check knows no expired request: those (inert) rows go.
DELETE FROM ops.payout_suspensions WHERE status = 'expired';
ALTER TABLE ops.payout_suspensions
    DROP CONSTRAINT payout_suspensions_people,
    DROP CONSTRAINT payout_suspensions_two_people,
    DROP COLUMN approved_by_user,
    DROP COLUMN requested_by_user,
    DROP CONSTRAINT payout_suspensions_status_check,
    ADD CONSTRAINT payout_suspensions_status_check CHECK (status IN ('pending', 'approved'));
DROP INDEX ops.api_keys_user;
ALTER TABLE ops.api_keys DROP COLUMN user_id;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
