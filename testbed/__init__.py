"""Offline test bed: real distribution hosts, Docker's apt repository and a Docker Hub mirror.

Everything runs on this machine and binds 127.0.0.1 only (see ``python -m testbed --help``).
"""
