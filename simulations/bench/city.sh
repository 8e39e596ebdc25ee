#!/usr/bin/env bash
# Runs the city scenarios of simulations/CITY.md one after another (they need the machine to
# themselves) and keeps each run's JSON line and chart under simulations/city/.
#
#   simulations/bench/city.sh [SCENARIO ...]      (default: steady overload chaos)
#
# steady    2,000 couriers, 10 minutes at 1.5 orders/s with peaks of 3/s, 20 map clients
# overload  2,000 couriers, 5 minutes at a flat 5 orders/s, 20 map clients
# chaos     the steady day, same seed, with SIGKILLs, a RabbitMQ restart and a database cut
#
# Needs PostgreSQL/TimescaleDB and RabbitMQ (scripts/services); builds the release binaries.
# Environment: CITY_SEED (default 1), CITY_OUT (default simulations/city), CITY_TAG (a suffix
# for the file names, e.g. a run number, default none).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

scenarios=("$@")
[[ ${#scenarios[@]} -gt 0 ]] || scenarios=(steady overload chaos)
seed=${CITY_SEED:-1}
out=${CITY_OUT:-simulations/city}
tag=${CITY_TAG:+-$CITY_TAG}
mkdir -p "$out"

cargo build --release --locked -p dispatcher -p simulations --bin dispatcher --bin city
city=target/release/city

for scenario in "${scenarios[@]}"; do
  case $scenario in
    steady) args=(--couriers 2000 --minutes 10 --orders-per-s 1.5 --peak-per-s 3 --map-clients 20) ;;
    overload) args=(--couriers 2000 --minutes 5 --orders-per-s 5 --peak-per-s 5 --map-clients 20) ;;
    chaos) args=(--couriers 2000 --minutes 10 --orders-per-s 1.5 --peak-per-s 3 --map-clients 20 --chaos) ;;
    *) echo "unknown scenario $scenario (steady, overload, chaos)" >&2; exit 2 ;;
  esac
  name=$out/$scenario$tag
  echo "city: $scenario: ${args[*]} --seed $seed" >&2
  "$city" "${args[@]}" --seed "$seed" --plot "$name.svg" >"$name.json"
  cat "$name.json"
done
