"""The test bed's virtual machines: libvirt on this machine and an offline Ubuntu 20.04 box.

`python -m testbed.vm libvirt` installs and starts what Vagrant's libvirt provider needs;
`python -m testbed.vm box` builds (or reuses) the `provision-testbed/focal` Vagrant box and adds
it to Vagrant. The end-to-end tests (tests/e2e) call both; see TESTBED.md, "Vagrant and VMs".
"""

from __future__ import annotations
