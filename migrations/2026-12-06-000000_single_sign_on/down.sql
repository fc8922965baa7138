DROP TABLE oidc_states;
DROP TABLE oidc_identities;
ALTER TABLE users DROP COLUMN sso_only;
