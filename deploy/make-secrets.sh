#!/usr/bin/env bash
# The secrets deploy/compose.yaml mounts (Docker secrets), made with openssl only:
#
#   bash deploy/make-secrets.sh            # once, before the first `docker compose up`
#   bash deploy/make-secrets.sh DIR        # elsewhere (default: deploy/secrets, git-ignored)
#
# It writes a CA (ca.pem; its key ca.key is only needed to sign new certificates: keep it
# offline), TLS certificates for Kafka (names kafka, localhost) and Redis (redis, localhost),
# Kafka's PKCS12 keystore and its password, the Kafka admin's PLAIN login (kafka_jaas.conf, for
# the one-shot kafka-users service only), one SCRAM password per claimstream service, and
# Redis's ACL file (the registry user, and a read-only user for settlement systems' freeze
# checks; passwords stored as SHA-256 hashes), the audit trail's HMAC key ring and checkpoint
# signing key (audit_hmac.keys, audit_signing.pem, and audit_public.pem for auditors), the
# workers' API signing key and the action keyring holding its public half, and the API's
# token file (an `ops` admin token and a `settlement-gw` settlement token, stored hashed; the
# tokens themselves go to api_token_ops and api_token_settlement-gw, for their holders).
# Existing files are kept, so a rerun only fills in what is missing; to rotate one, delete it
# and rerun (docs/security.md#rotating-passwords-and-certificates says what to restart).
#
# The directory is 0700 (only you on the host); the files are 0644 so that the containers'
# own users (Kafka 1000, Redis 999, claimstream 10001) can read their bind-mounted copies.
set -euo pipefail
out="${1:-$(cd "$(dirname "$0")" && pwd)/secrets}"
mkdir -p "$out"
chmod 0700 "$out"
cd "$out"
days=825

password() {  # NAME: 48 hex digits, no character SCRAM or JAAS syntax would trip on
  [ -s "$1" ] || { openssl rand -hex 24 | tr -d '\n' > "$1"; }
}

certificate() {  # NAME DNS...: a key and a certificate signed by the CA, for those names
  local name=$1; shift
  [ -s "$name.pem" ] && return 0
  local san="" dns
  for dns in "$@"; do san="${san:+$san,}DNS:$dns"; done
  openssl req -newkey rsa:2048 -nodes -keyout "$name.key" -out "$name.csr" \
    -subj "/CN=$1" 2>/dev/null
  printf 'subjectAltName=%s,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' "$san" > "$name.ext"
  openssl x509 -req -in "$name.csr" -CA ca.pem -CAkey ca.key -CAcreateserial \
    -out "$name.pem" -days "$days" -sha256 -extfile "$name.ext" 2>/dev/null
  rm -f "$name.csr" "$name.ext"
}

# --- the CA --------------------------------------------------------------------------------
if [ ! -s ca.pem ]; then
  openssl req -x509 -newkey rsa:3072 -nodes -keyout ca.key -out ca.pem -days "$days" \
    -subj "/CN=claimstream deployment CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    2>/dev/null
fi

# --- Kafka: certificate, PKCS12 keystore, the admin's login, the services' passwords ------
certificate kafka kafka localhost
password kafka_keystore_password
if [ ! -s kafka.keystore.p12 ]; then
  openssl pkcs12 -export -in kafka.pem -inkey kafka.key -certfile ca.pem -name kafka \
    -out kafka.keystore.p12 -passout "file:kafka_keystore_password"
fi
password kafka_admin_password
password kafka_worker_password
password kafka_topics_password
password kafka_ops_password
if [ ! -s kafka_jaas.conf ]; then
  cat > kafka_jaas.conf <<JAAS
KafkaServer {
    org.apache.kafka.common.security.plain.PlainLoginModule required
    user_kafka-admin="$(cat kafka_admin_password)";
    org.apache.kafka.common.security.scram.ScramLoginModule required;
};
JAAS
fi

# --- Redis: certificate, the registry user's password and ACL -----------------------------
certificate redis redis localhost
password redis_worker_password
password redis_settlement_password
sha256() { printf %s "$(cat "$1")" | openssl dgst -sha256 -r | cut -d' ' -f1; }
if [ ! -s redis_users.acl ]; then
  {
    echo "user default off"
    # the workers and `claimstream freezes rebuild`: the registry's commands on its keys
    echo "user claimstream-worker on #$(sha256 redis_worker_password) ~claimstream:* resetchannels -@all +ping +mget +set +del +watch +unwatch +multi +exec +scan +info"
    # settlement systems asking whether someone is frozen: read the freeze keys, nothing else
    echo "user claimstream-settlement on #$(sha256 redis_settlement_password) ~claimstream:freeze:* resetchannels -@all +ping +get +mget"
  } > redis_users.acl
fi

# --- the audit trail: HMAC key ring, Ed25519 checkpoint key (docs/audit.md) ----------------
if [ ! -s audit_hmac.keys ]; then
  { echo "# claimstream audit HMAC key ring: the LAST key writes; keep secret"
    openssl rand -base64 32; } > audit_hmac.keys
fi
[ -s audit_signing.pem ] || openssl genpkey -algorithm ed25519 -out audit_signing.pem
[ -s audit_public.pem ] || openssl pkey -in audit_signing.pem -pubout -out audit_public.pem

# --- people's actions: the API's signing key and the keyring (docs/security.md) -----------
[ -s api_signing.pem ] || openssl genpkey -algorithm ed25519 -out api_signing.pem
if [ ! -s action_keys.pem ]; then
  # reviewers who sign with the CLI add `Signer: NAME` and their public key here
  { echo "Service: api"; openssl pkey -in api_signing.pem -pubout; } > action_keys.pem
fi

# --- the API's tokens, stored hashed (docs/security.md#tokens) -----------------------------
token() {  # NAME ROLES: a token for NAME (in api_token_NAME) and its hashed line
  [ -s "api_token_$1" ] || { printf 'cs_%s' "$(openssl rand -hex 24)" > "api_token_$1"; }
  printf '%s %s sha256:%s\n' "$1" "$2" "$(sha256 "api_token_$1")"
}
if [ ! -s api_tokens ]; then
  { token ops admin; token settlement-gw settlement; } > api_tokens
fi

chmod 0644 ./*
chmod 0600 ca.key api_token_*
echo "secrets in $out: $(ls | tr '\n' ' ')"
