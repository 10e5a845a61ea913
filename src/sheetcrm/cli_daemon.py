"""Daemon commands (``run``, ``status``) register on the main ``cli`` group here."""

from __future__ import annotations
