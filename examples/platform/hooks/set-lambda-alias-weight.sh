#!/bin/sh
# vigil canary hook: give the canary WEIGHT percent of the traffic (0-100).
#
# vigil runs it as: hooks/set-lambda-alias-weight.sh WEIGHT   (from the spec's directory), with
# VIGIL_CANARY_WEIGHT, VIGIL_CANARY_RUN_ID and VIGIL_CANARY_ACTION set. Exit 0 when the weight is
# set; anything else fails the step (and vigil rolls back).
#
# On AWS Lambda, a weighted alias does this (uncomment, set FUNCTION, ALIAS and the two versions):
#   aws lambda update-alias --function-name "$FUNCTION" --name "$ALIAS" \
#     --function-version "$STABLE_VERSION" \
#     --routing-config "AdditionalVersionWeights={\"$CANARY_VERSION\"=$(echo "scale=2; $1/100" | bc)}"
#
# As shipped it records the weight in .vigil/canary-weight, so the example runs anywhere.
set -eu
weight=${1:?usage: set-lambda-alias-weight.sh WEIGHT}
case $weight in
  ''|*[!0-9]*) echo "weight must be a whole number 0-100, got '$weight'" >&2; exit 2 ;;
esac
[ "$weight" -le 100 ] || { echo "weight must be at most 100, got $weight" >&2; exit 2; }
mkdir -p .vigil
printf '%s\n' "$weight" > .vigil/canary-weight.tmp
mv .vigil/canary-weight.tmp .vigil/canary-weight
echo "canary weight ${weight}% (run ${VIGIL_CANARY_RUN_ID:-?}, ${VIGIL_CANARY_ACTION:-set_weight})"
