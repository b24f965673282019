#!/usr/bin/env bash
# One-shot (compose service kafka-users, Apache Kafka's image): the SCRAM users of the
# claimstream services and the ACLs each needs, created by the PLAIN admin kafka-admin over
# SASL_SSL. Idempotent: rerunning it sets the same passwords and ACLs again (how a password is
# rotated: change its secret file, rerun, restart the service that uses it).
#
# What each user may do (docs/security.md#kafka-acls-per-service):
#   claimstream-worker  Read settlement.*; Read, Write, Describe, DescribeConfigs claimstream*
#                       (its outputs, repartition and changelog topics, the control topic);
#                       Read its consumer group `claimstream` (the app id). No transactional id
#                       (at_least_once); exactly_once would need Write on TransactionalId
#                       prefixed `claimstream`.
#   claimstream-topics  Create, Describe, DescribeConfigs settlement.* and claimstream*
#                       (`claimstream topics apply`).
#   claimstream-ops     Read, Describe claimstream*; Write claimstream.actions.v1 and
#                       claimstream.control.rules (alerts review, unfreeze, rules set); Write
#                       settlement.* (`claimstream produce`, demos: a real producer gets a user
#                       of its own with only that).
set -euo pipefail
bin=/opt/kafka/bin
bootstrap=${KAFKA_BOOTSTRAP:-kafka:9092}
umask 077
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/admin.properties" <<PROPS
security.protocol=SASL_SSL
sasl.mechanism=PLAIN
sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="kafka-admin" password="$(cat /run/secrets/kafka_admin_password)";
ssl.truststore.type=PEM
ssl.truststore.location=/run/secrets/ca
PROPS

scram() {  # USER PASSWORD_FILE
  printf 'SCRAM-SHA-512=[iterations=8192,password=%s]\n' "$(cat "$2")" > "$work/scram"
  "$bin/kafka-configs.sh" --bootstrap-server "$bootstrap" --command-config "$work/admin.properties" \
    --alter --entity-type users --entity-name "$1" --add-config-file "$work/scram"
}

allow() {  # USER RESOURCE-ARGS... -- OPERATIONS...
  local user=$1; shift
  local resource=() operations=()
  while [ "$1" != "--" ]; do resource+=("$1"); shift; done
  shift
  for op in "$@"; do operations+=(--operation "$op"); done
  "$bin/kafka-acls.sh" --bootstrap-server "$bootstrap" --command-config "$work/admin.properties" \
    --add --allow-principal "User:$user" "${resource[@]}" "${operations[@]}"
}

scram claimstream-worker /run/secrets/kafka_worker_password
scram claimstream-topics /run/secrets/kafka_topics_password
scram claimstream-ops /run/secrets/kafka_ops_password

prefixed=(--resource-pattern-type prefixed)
allow claimstream-worker --topic settlement. "${prefixed[@]}" -- Read Describe
allow claimstream-worker --topic claimstream "${prefixed[@]}" -- Read Write Describe DescribeConfigs
allow claimstream-worker --group claimstream -- Read

allow claimstream-topics --topic settlement. "${prefixed[@]}" -- Create Describe DescribeConfigs
allow claimstream-topics --topic claimstream "${prefixed[@]}" -- Create Describe DescribeConfigs

allow claimstream-ops --topic claimstream "${prefixed[@]}" -- Read Describe
allow claimstream-ops --topic claimstream.actions.v1 -- Write
allow claimstream-ops --topic claimstream.control.rules -- Write
allow claimstream-ops --topic settlement. "${prefixed[@]}" -- Write Describe
echo "kafka-users: SCRAM users and ACLs in place"
