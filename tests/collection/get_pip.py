"""Stands in for pip's get-pip.py, which ansible-test downloads to bootstrap pip into the virtual
environments it creates, from a host this machine cannot reach (ci-files.testing.ansible.com).
Same job: the interpreter's bundled pip (ensurepip, offline), then pip installs the requested
pip version from the package index as get-pip.py would. ansible-test runs it as
``python get_pip.py [pip options] pip==X [--no-setuptools] [--no-wheel]``."""

from __future__ import annotations

import subprocess
import sys

# get-pip.py's own options: with them it leaves setuptools/wheel out, which pip install does anyway.
GET_PIP_ONLY = {"--no-setuptools", "--no-wheel"}


def main() -> int:
    # In a child process: ensurepip points PIP_CONFIG_FILE at /dev/null in its own process, and
    # the install below must keep the machine's pip configuration (index, certificates).
    subprocess.run([sys.executable, "-m", "ensurepip", "--default-pip"], check=True)
    args = [arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY]
    return subprocess.run([sys.executable, "-m", "pip", "install", *args], check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
