-- Optional access policies of the control API. `allowed_ips`: a JSON array of CIDRs the key (or,
-- for a workspace, every caller of its routes) may call from; NULL means any address.
-- `signing_sealed`: the key's request-signing secret, sealed with the keyring; NULL means its
-- requests need no signature.
ALTER TABLE api_keys ADD COLUMN allowed_ips TEXT;
ALTER TABLE api_keys ADD COLUMN signing_sealed BLOB;
ALTER TABLE workspaces ADD COLUMN allowed_ips TEXT;
