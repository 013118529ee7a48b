#!/usr/bin/python
# The docker group exists and holds the given users, in one module call: the group created as a
# system group when missing (a host where the engine is not installed yet), each user not in it
# added with gpasswd, other members left alone. Lighter than the group and user modules, which
# read every attribute of the account they manage (0.6 s against 0.35 s on focal).
from __future__ import annotations

DOCUMENTATION = r"""
module: docker_group_members
short_description: Ensure a group exists and holds the given users, leaving its other members
version_added: 0.2.0
description:
- Creates O(group) as a system group (C(groupadd --system)) when it does not exist.
- Adds each of O(users) that is not a member of O(group) yet (C(gpasswd --add), the user's
  supplementary groups; its primary group and other memberships are left as they are). Members
  not in O(users) stay.
- Fails, changing nothing, when one of O(users) has no account.
- In check mode it reports what it would create and add.
options:
  group:
    description: The group.
    type: str
    default: docker
  users:
    description: Users that must be members.
    type: list
    elements: str
    required: true
author:
- provision maintainers (@provision)
"""

EXAMPLES = r"""
- name: Put the users in the docker group
  provision.hosts.docker_group_members:
    group: docker
    users: [ops]
"""

RETURN = r"""
created:
  description: The group was created (in check mode, would be).
  returned: always
  type: bool
added:
  description: The users added to the group (in check mode, who would be).
  returned: always
  type: list
  elements: str
"""

import grp
import pwd
from typing import List

from ansible.module_utils.basic import AnsibleModule


def members(group: str) -> List[str]:
    """The group's supplementary members, or raise KeyError when it does not exist."""
    return list(grp.getgrnam(group).gr_mem)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "group": {"type": "str", "default": "docker"},
            "users": {"type": "list", "elements": "str", "required": True},
        },
        supports_check_mode=True,
    )
    group, users = module.params["group"], module.params["users"]
    unknown = []
    for user in users:
        try:
            pwd.getpwnam(user)
        except KeyError:
            unknown.append(user)
    if unknown:
        module.fail_json(msg="No such user: %s. Nothing was changed." % ", ".join(unknown))
    try:
        present, created = members(group), False
    except KeyError:
        present, created = [], True
    added = [u for i, u in enumerate(users) if u not in present and u not in users[:i]]
    if not module.check_mode:
        if created:
            module.run_command(["groupadd", "--system", group], check_rc=True)
        for user in added:
            module.run_command(["gpasswd", "--add", user, group], check_rc=True)
    module.exit_json(changed=bool(created or added), created=created, added=added)


if __name__ == "__main__":
    main()
