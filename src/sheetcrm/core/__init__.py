"""The pure planner: typed rows, rules, flows, guards, the sheet's projection and
the messages. No I/O here: no files, no sqlite, no HTTP."""
