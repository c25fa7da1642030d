-- Authorization: teams (optionally following an IdP group), resource types with their
-- relations -> actions, resources of those types with an optional parent, and grants of a
-- relation on a resource to a user or a team.
--
-- `authz_version` is advanced in the transaction of every change to the tenant's authorization
-- data (and locked by it, so writers of one tenant take turns). A check reads it first (one
-- primary-key read) and uses an in-memory graph only if it was built at that version.
CREATE TABLE authz_version (
    tenant_id TEXT NOT NULL REFERENCES tenant (id) PRIMARY KEY,
    version   INTEGER NOT NULL
);

CREATE TABLE team (
    tenant_id      TEXT NOT NULL REFERENCES tenant (id),
    id             TEXT NOT NULL,
    name           TEXT NOT NULL,
    -- Both set or both NULL: the members follow this group of this connection at each sign-in.
    idp_connection TEXT,
    idp_group      TEXT,
    created_at     INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX team_idp ON team (tenant_id, idp_connection);

CREATE TABLE team_member (
    tenant_id TEXT NOT NULL,
    team_id   TEXT NOT NULL,
    user_id   TEXT NOT NULL,
    role      TEXT NOT NULL,   -- 'member' | 'manager'
    PRIMARY KEY (tenant_id, team_id, user_id),
    FOREIGN KEY (tenant_id, team_id) REFERENCES team (tenant_id, id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES user_account (tenant_id, id)
);
CREATE INDEX team_member_user ON team_member (tenant_id, user_id);

CREATE TABLE resource_type (
    tenant_id  TEXT NOT NULL REFERENCES tenant (id),
    name       TEXT NOT NULL,
    relations  TEXT NOT NULL,  -- JSON object: relation -> [action]
    created_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, name)
);

CREATE TABLE authz_resource (
    tenant_id     TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    resource_id   TEXT NOT NULL,
    parent_type   TEXT,
    parent_id     TEXT,
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, resource_type, resource_id),
    FOREIGN KEY (tenant_id, resource_type) REFERENCES resource_type (tenant_id, name)
);
CREATE INDEX authz_resource_parent ON authz_resource (tenant_id, parent_type, parent_id);

CREATE TABLE authz_grant (
    tenant_id     TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    resource_id   TEXT NOT NULL,
    relation      TEXT NOT NULL,
    subject_type  TEXT NOT NULL,  -- 'user' | 'team'
    subject_id    TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, resource_type, resource_id, relation, subject_type, subject_id),
    FOREIGN KEY (tenant_id, resource_type, resource_id)
        REFERENCES authz_resource (tenant_id, resource_type, resource_id)
);
CREATE INDEX authz_grant_subject ON authz_grant (tenant_id, subject_type, subject_id);
