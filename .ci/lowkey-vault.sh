#!/usr/bin/env bash
# lowkey-vault, an independent Azure Key Vault emulator, for the azure_emulator tests.
#
#   eval "$(bash .ci/lowkey-vault.sh start)"   # fetch (Maven) + start on 127.0.0.1 + wait
#   bash .ci/lowkey-vault.sh stop              # stop the instance started by `start`
#   bash .ci/lowkey-vault.sh fetch             # only download the jar into .ci/cache/lowkey
#
# `start` prints shell `export` lines on stdout (everything else goes to stderr):
#   AIOKES_TEST_LOWKEY_URL        https://127.0.0.1:<port>  (the vault; HTTPS, TLSv1.2)
#   AIOKES_TEST_LOWKEY_CA         PEM file of lowkey's certificate (pass as ca_file)
#   AIOKES_TEST_LOWKEY_TOKEN_URL  http://127.0.0.1:<port>   (IMDS-style token endpoint)
#   AIOKES_TEST_LOWKEY_PID        the Java process
# Exit status 3: lowkey-vault cannot be had on this machine (no jar on Maven Central for the
# versions tried, or no suitable Java); the caller should skip the emulator tests.
#
# Settings (environment): LOWKEY_VAULT_VERSIONS (space-separated, tried in order),
# LOWKEY_VAULT_JAR (use this jar, skip Maven), LOWKEY_VAULT_PORT, LOWKEY_VAULT_TOKEN_PORT,
# LOWKEY_VAULT_START_TIMEOUT (seconds, default 180).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="$ROOT/.ci/cache/lowkey"
GROUP_ARTIFACT="com.github.nagyesta.lowkey-vault:lowkey-vault-app"
# 7.x needs Java 25; 3.4.x is the last line that runs on Java 17.
VERSIONS="${LOWKEY_VAULT_VERSIONS:-7.3.74 3.4.33}"
UNAVAILABLE=3
MARKER="$CACHE/unavailable"

log() { echo "lowkey-vault.sh: $*" >&2; }

java_major() {  # java_major <java binary> -> 17, 21, 25, ...
  "$1" -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1
}

java_needed() {  # java_needed <lowkey version> -> the Java release its jar was built for
  case "$1" in
    [0-3].*) echo 17 ;;
    4.*) echo 21 ;;
    *) echo 25 ;;
  esac
}

find_java() {  # find_java <major> -> path of a java binary of at least that release
  local want="$1" candidate
  for candidate in "${JAVA_HOME:-}/bin/java" "$(command -v java || true)" /usr/lib/jvm/*/bin/java; do
    [[ -x "$candidate" ]] || continue
    if (( $(java_major "$candidate" || echo 0) >= want )); then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

fetch() {  # fetch -> prints "<version> <jar path>" of the first version Maven resolves
  local version jar
  mkdir -p "$CACHE"
  if [[ -n "${LOWKEY_VAULT_JAR:-}" ]]; then
    echo "custom $LOWKEY_VAULT_JAR"
    return 0
  fi
  command -v mvn >/dev/null || { log "Maven (mvn) is not installed"; return $UNAVAILABLE; }
  # Maven caches a failed resolution for a day; so do we, without starting Maven at all.
  if [[ -n "$(find "$MARKER" -mtime -1 2>/dev/null)" && "$(cat "$MARKER")" == "$VERSIONS" ]]; then
    log "lowkey-vault-app $VERSIONS did not resolve from Maven Central today (rm $MARKER to retry)"
    return $UNAVAILABLE
  fi
  for version in $VERSIONS; do
    jar="$CACHE/lowkey-vault-app-$version.jar"
    if [[ ! -s "$jar" ]]; then
      log "mvn dependency:copy $GROUP_ARTIFACT:$version"
      mvn -B -q dependency:copy -Dartifact="$GROUP_ARTIFACT:$version" \
        -DoutputDirectory="$CACHE" >"$CACHE/mvn.log" 2>&1 \
        || { log "$version: not resolvable (see $CACHE/mvn.log)"; continue; }
    fi
    if [[ -s "$jar" ]]; then
      echo "$version $jar"
      return 0
    fi
  done
  echo "$VERSIONS" >"$MARKER"
  log "no lowkey-vault-app jar ($VERSIONS) could be fetched from Maven Central"
  return $UNAVAILABLE
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_until_ready() {  # wait_until_ready <pid> <https port> <token port> <timeout s>
  local pid="$1" port="$2" token_port="$3" deadline=$((SECONDS + $4))
  while (( SECONDS < deadline )); do
    kill -0 "$pid" 2>/dev/null || { log "lowkey-vault exited; log: $CACHE/lowkey.log"; return 1; }
    if curl -fsS -o /dev/null "http://127.0.0.1:$token_port/ping" 2>/dev/null \
      || curl -kfsS -o /dev/null "https://127.0.0.1:$port/ping" 2>/dev/null; then
      return 0
    fi
    sleep 0.5
  done
  log "lowkey-vault did not answer /ping within $4 s; log: $CACHE/lowkey.log"
  return 1
}

export_ca() {  # export_ca <https port> <token port> -> writes $CACHE/lowkey-ca.pem
  local port="$1" token_port="$2" pem="$CACHE/lowkey-ca.pem" p12="$CACHE/lowkey.p12" password
  password="$(curl -fsS "http://127.0.0.1:$token_port/metadata/default-cert/password" || echo changeit)"
  if curl -fsS -o "$p12" "http://127.0.0.1:$token_port/metadata/default-cert/lowkey-vault.p12" \
    && { openssl pkcs12 -in "$p12" -nokeys -passin "pass:$password" -out "$pem" 2>/dev/null \
      || openssl pkcs12 -legacy -in "$p12" -nokeys -passin "pass:$password" -out "$pem" 2>/dev/null; }
  then
    :
  else  # fall back to the certificate the server presents (a self-signed leaf)
    openssl s_client -connect "127.0.0.1:$port" -servername localhost </dev/null 2>/dev/null \
      | openssl x509 -out "$pem"
  fi
  curl -fsS --cacert "$pem" -o /dev/null "https://127.0.0.1:$port/ping" \
    || { log "the exported certificate does not verify https://127.0.0.1:$port"; return 1; }
}

start() {
  local fetched version jar java port token_port pid started=$SECONDS
  fetched="$(fetch)" || return $?
  read -r version jar <<<"$fetched"
  java="$(find_java "$(java_needed "${version/custom/99}")")" \
    || { log "lowkey-vault $version needs Java $(java_needed "$version")+; none found"; return $UNAVAILABLE; }
  port="${LOWKEY_VAULT_PORT:-$(free_port)}"
  token_port="${LOWKEY_VAULT_TOKEN_PORT:-$(free_port)}"
  log "starting lowkey-vault $version with $java on 127.0.0.1:$port (token port $token_port)"
  nohup "$java" -jar "$jar" --server.address=127.0.0.1 --server.port="$port" \
    --app.token.port="$token_port" --LOWKEY_VAULT_NAMES=- >"$CACHE/lowkey.log" 2>&1 &
  pid=$!
  echo "$pid" >"$CACHE/lowkey.pid"
  if ! wait_until_ready "$pid" "$port" "$token_port" "${LOWKEY_VAULT_START_TIMEOUT:-180}" \
    || ! export_ca "$port" "$token_port"; then
    stop
    return 1
  fi
  log "ready after $((SECONDS - started)) s"
  echo "export AIOKES_TEST_LOWKEY_URL=https://127.0.0.1:$port"
  echo "export AIOKES_TEST_LOWKEY_CA=$CACHE/lowkey-ca.pem"
  echo "export AIOKES_TEST_LOWKEY_TOKEN_URL=http://127.0.0.1:$token_port"
  echo "export AIOKES_TEST_LOWKEY_PID=$pid"
}

stop() {
  local pid_file="$CACHE/lowkey.pid" pid
  [[ -f "$pid_file" ]] || return 0
  pid="$(cat "$pid_file")"
  rm -f "$pid_file"
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  fetch) fetch >/dev/null ;;
  *) echo "usage: $0 start|stop|fetch" >&2; exit 2 ;;
esac
