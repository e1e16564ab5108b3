#!/usr/bin/env bash
# Stage 8's demonstrations: 900 push_cube recovery demos (the committed checkpoint docs/results/franka-base-v4/policy,
# stage 7's, drives each attempt for 40-140 steps, the scripted expert takes over and only its part is recorded;
# chunks of 100, presets none, train, colour, three rounds). Execution noise 0.01 rad; seeds from 36000000; recorded
# in resumable chunks into outputs/franka-base-v4-stage8-data/ (see tools/record-chunks.sh). Prints the --data list.
set -euo pipefail
TAKEOVER="--takeover-from docs/results/franka-base-v4/policy --takeover-steps 40:140"
for round in 0 1 2; do
  for preset in none train colour; do echo "push_cube $preset takeover$round 100 $TAKEOVER"; done
done | tools/record-chunks.sh outputs/franka-base-v4-stage8-data 36000000
