#!/bin/bash
# envelope_relay.sh - envelope.sh relayed: the same checks, with the test's
# milterhost as the external milter of a front milterhost's one instance
# of the bundled milter plugin (MH_WIRE_RELAY, tests/wire/lib.sh).  What
# the MTA hears must be the same as without the relay.
MH_WIRE_RELAY=yes exec bash "$(dirname "$0")/envelope.sh"
