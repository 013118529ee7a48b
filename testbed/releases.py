"""The distribution releases the test bed can build hosts of."""

from __future__ import annotations

from dataclasses import dataclass

UBUNTU_MIRROR = "http://archive.ubuntu.com/ubuntu"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
DEBIAN_SECURITY = "http://deb.debian.org/debian-security"


@dataclass(frozen=True)
class Release:
    codename: str
    distro: str  # "ubuntu" or "debian", as in Docker's repository layout
    version: str
    # Debian 12's debootstrap has no script for the newest Ubuntu releases; gutsy's works.
    script: str
    # systemd 258+ cannot run on a cgroup v1 hierarchy (see testbed/images.py).
    cgroup2_only: bool = False

    @property
    def mirror(self) -> str:
        return UBUNTU_MIRROR if self.distro == "ubuntu" else DEBIAN_MIRROR

    @property
    def components(self) -> list[str]:
        # focal keeps apt-transport-https in universe; Docker's plugins live in universe too.
        return ["main", "universe"] if self.distro == "ubuntu" else ["main"]

    def sources_list(self) -> str:
        comps = " ".join(self.components)
        if self.distro == "ubuntu":
            suites = [self.codename, f"{self.codename}-updates", f"{self.codename}-security"]
            return "".join(f"deb {self.mirror} {suite} {comps}\n" for suite in suites)
        return (
            f"deb {self.mirror} {self.codename} {comps}\n"
            f"deb {self.mirror} {self.codename}-updates {comps}\n"
            f"deb {DEBIAN_SECURITY} {self.codename}-security {comps}\n"
        )


RELEASES: dict[str, Release] = {
    r.codename: r
    for r in (
        Release("focal", "ubuntu", "20.04", "focal"),
        Release("jammy", "ubuntu", "22.04", "jammy"),
        Release("noble", "ubuntu", "24.04", "gutsy"),
        Release("resolute", "ubuntu", "26.04", "gutsy", cgroup2_only=True),
        Release("bookworm", "debian", "12", "bookworm"),
        Release("trixie", "debian", "13", "trixie"),
    )
}

# What `up` builds unless PROVISION_TESTBED_RELEASES says otherwise.
DEFAULT_RELEASES = list(RELEASES)


def get(codename: str) -> Release:
    try:
        return RELEASES[codename]
    except KeyError:
        known = ", ".join(RELEASES)
        raise KeyError(f"unknown release {codename!r} (known: {known})") from None
