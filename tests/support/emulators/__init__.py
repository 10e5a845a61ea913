"""Loopback emulators of the HTTP APIs sheetcrm's table adapters talk to.

Each is a ``support.servers.LoopbackServer``: the request log, scripted faults and
the server's life cycle are the shared ones; an emulator adds only the API it speaks.
"""
