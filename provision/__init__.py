"""provision: an idempotent Docker host from a Vagrant VM or existing SSH hosts."""

from __future__ import annotations
