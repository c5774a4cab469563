-- Open Badges credentials (src/credential/, docs/credentials.md).

-- The public half of every key the issuer has signed with (the private half is derived from the
-- master key and never stored), so `GET /issuer/keys` keeps listing a key after a rotation.
CREATE TABLE issuer_keys (
    kid text PRIMARY KEY,
    public_jwk jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- One row per certificate whose credential was issued (downloaded): ids and the credential's
-- place in the status list (`sequence`: list = sequence / 131072 + 1, index = sequence % 131072).
-- Nothing personal: the credential itself is made again from the log on each download.
CREATE TABLE issued_credentials (
    certificate_id uuid PRIMARY KEY,
    credential_id uuid NOT NULL UNIQUE,
    portfolio_id uuid NOT NULL,
    sequence bigint GENERATED ALWAYS AS IDENTITY (MINVALUE 0 START WITH 0) UNIQUE,
    issued_at timestamptz NOT NULL DEFAULT now()
);
