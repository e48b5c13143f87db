#!/usr/bin/env bash
# Entrypoint of the MongoDB members (deploy/compose.infra.yml): writes the replica set's keyfile from
# MONGO_REPLICA_KEY, since mongod reads the key only from a file it owns with no access for others, then hands over
# to the image's own entrypoint (which creates the root user on a first start and drops to the mongodb user).
set -euo pipefail

keyfile=/run/mongo/keyfile
key="${MONGO_REPLICA_KEY:-}"
# mongod's rule for a keyfile: 6 to 1024 characters of the base64 set. Checked here so that a bad key stops the
# member at once with a message, instead of a mongod that exits on every restart.
if [[ ${#key} -lt 6 || ${#key} -gt 1024 || ! $key =~ ^[A-Za-z0-9+/=]+$ ]]; then
  echo "MONGO_REPLICA_KEY must be 6-1024 base64 characters (openssl rand -base64 756 | tr -d '\\n')" >&2
  exit 1
fi
mkdir -p "$(dirname "$keyfile")"
(umask 077 && printf '%s\n' "$key" > "$keyfile")
chown mongodb:mongodb "$keyfile"
chmod 400 "$keyfile"
unset MONGO_REPLICA_KEY key
exec docker-entrypoint.sh "$@"
