#!/usr/bin/env bash
# roads/bench/compare.sh [PAIRS] [SEED]: our road network against OSRM (car profile) on the
# Helsinki test extract, and straight lines against our road network; prints roads-compare's
# JSON line. Needs scripts/services to have run (it caches osrm-routed and the prepared extract
# in .cache/osrm/). Also prepares, once, the extract with a car profile whose turn penalties
# are zero, to tell how much of the difference from OSRM the turns are.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
PAIRS=${1:-400}
SEED=${2:-1}
ENV_FILE=.cache/osrm/env
[[ -f $ENV_FILE ]] || { echo "compare: run scripts/services first (no $ENV_FILE)" >&2; exit 1; }
# shellcheck source=/dev/null
source "$ENV_FILE"
PROFILES=$(cd "$OSRM_BIN/../share/profiles" && pwd)
FLAT=.cache/osrm/flat-$(basename "$(dirname "$OSRM_HELSINKI")")
if [[ ! -f $FLAT/helsinki-centre.osrm.hsgr ]]; then
  echo "compare: preparing the extract with a car profile without turn penalties in $FLAT" >&2
  rm -rf "$FLAT.tmp" && mkdir -p "$FLAT.tmp/profiles"
  cp -r "$PROFILES"/. "$FLAT.tmp/profiles/"
  sed -i -E 's/^( *turn_penalty *= *)[0-9.]+/\10/; s/^( *u_turn_penalty *= *)[0-9.]+/\10/; s/^( *oncoming_turn_penalty *= *)[0-9.]+/\10/' \
    "$FLAT.tmp/profiles/car.lua"
  cp roads/tests/data/helsinki-centre.osm.pbf "$FLAT.tmp/"
  "$OSRM_BIN/osrm-extract" -p "$FLAT.tmp/profiles/car.lua" "$FLAT.tmp/helsinki-centre.osm.pbf" >"$FLAT.tmp/prepare.log" 2>&1
  "$OSRM_BIN/osrm-contract" "$FLAT.tmp/helsinki-centre.osrm" >>"$FLAT.tmp/prepare.log" 2>&1
  rm -rf "$FLAT" && mv "$FLAT.tmp" "$FLAT"
fi
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
P1=$(port)
P2=$(port)
"$OSRM_BIN/osrm-routed" --algorithm ch --ip 127.0.0.1 --port "$P1" "$OSRM_HELSINKI" >/dev/null 2>&1 &
A=$!
"$OSRM_BIN/osrm-routed" --algorithm ch --ip 127.0.0.1 --port "$P2" "$FLAT/helsinki-centre.osrm" >/dev/null 2>&1 &
B=$!
trap 'kill $A $B 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$P1/nearest/v1/driving/24.941,60.17" >/dev/null 2>&1 &&
    curl -fsS "http://127.0.0.1:$P2/nearest/v1/driving/24.941,60.17" >/dev/null 2>&1 && break
  sleep 0.2
done
cargo run --quiet --release --locked -p simulations --bin roads-compare -- \
  --extract roads/tests/data/helsinki-centre.osm.pbf --osrm "http://127.0.0.1:$P1" \
  --osrm-flat "http://127.0.0.1:$P2" --pairs "$PAIRS" --seed "$SEED"
