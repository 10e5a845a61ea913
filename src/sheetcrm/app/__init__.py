"""Use cases the command line and the daemon call: plan and sync, check, explain,
report. Each wires the adapters (table, channels, ledger) to the pure core."""
