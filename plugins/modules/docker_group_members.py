#!/usr/bin/python
# The docker group holds exactly the users the plan says, in one module call: the group created
# as a system group when someone must join it and it is missing (a host where the engine is not
# installed yet), each user not in it added and each user to remove removed with gpasswd, other
# members left alone, and the record of the role's list written (or removed). A removed user's
# processes keep the group until they end: they are named in a warning. Lighter than the group
# and user modules, which read every attribute of the account they manage.
from __future__ import annotations

DOCUMENTATION = r"""
module: docker_group_members
short_description: Add and remove a group's members as told, leaving its other members
version_added: 0.2.0
description:
- Creates O(group) as a system group (C(groupadd --system)) when it does not exist and
  O(users) names someone.
- Adds each of O(users) that is not a member of O(group) yet (C(gpasswd --add), the user's
  supplementary groups; its primary group and other memberships are left as they are), and
  removes each of O(remove) that is a member (C(gpasswd --delete)). Other members stay.
- A removed user's processes that started before keep the group until they end (a login keeps
  it until logout), and the module warns with their process IDs and commands.
- With O(record_path), writes O(record) there as JSON (root:root 0644, atomically), or removes
  the file with O(forget_record).
- Fails, changing nothing, when one of O(users) has no account.
- In check mode it reports what it would create, add, remove and write.
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
  remove:
    description: Users that must not be members.
    type: list
    elements: str
    default: []
  record_path:
    description: The local fact recording the role's list of users.
    type: path
  record:
    description: The record's content.
    type: dict
  forget_record:
    description: Remove O(record_path) instead of writing it.
    type: bool
    default: false
author:
- provision maintainers (@provision)
"""

EXAMPLES = r"""
- name: Put the users in the docker group, take out those no longer listed
  provision.hosts.docker_group_members:
    group: docker
    users: [ops, alice]
    remove: [bob]
    record_path: /etc/ansible/facts.d/docker_users.fact
    record:
      users: [alice, ops]
"""

RETURN = r"""
created:
  description: The group was created.
  returned: always
  type: bool
added:
  description: The users added to the group.
  returned: always
  type: list
  elements: str
removed:
  description: The users removed from the group.
  returned: always
  type: list
  elements: str
still_holding:
  description: Per removed user, the processes that still hold the group (C(pid command)).
  returned: always
  type: dict
"""

import grp
import os
import pwd
from typing import Dict, List

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.provision.hosts.plugins.module_utils.docker_files import (
    ensure_dir,
    json_bytes,
    put,
)
from ansible_collections.provision.hosts.plugins.module_utils.docker_files import (
    remove as remove_file,
)


def members(group: str) -> List[str]:
    """The group's supplementary members, or raise KeyError when it does not exist."""
    return list(grp.getgrnam(group).gr_mem)


def holding(users: List[str], gid: int, proc: str = "/proc") -> Dict[str, List[str]]:
    """Per user, the processes running as that user with GID among their groups ("pid comm")."""
    uids = {}
    for user in users:
        try:
            uids[pwd.getpwnam(user).pw_uid] = user
        except KeyError:
            continue  # an account already deleted has no processes
    found: Dict[str, List[str]] = {}
    for pid in sorted((p for p in os.listdir(proc) if p.isdigit()), key=int):
        try:
            with open(os.path.join(proc, pid, "status"), encoding="utf-8") as status:
                fields = dict(line.split(":", 1) for line in status if ":" in line)
        except (OSError, ValueError):
            continue  # ended meanwhile
        uid = int(fields.get("Uid", "-1").split()[0])
        if uid in uids and str(gid) in fields.get("Groups", "").split():
            found.setdefault(uids[uid], []).append("%s %s" % (pid, fields["Name"].strip()))
    return found


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "group": {"type": "str", "default": "docker"},
            "users": {"type": "list", "elements": "str", "required": True},
            "remove": {"type": "list", "elements": "str", "default": []},
            "record_path": {"type": "path"},
            "record": {"type": "dict"},
            "forget_record": {"type": "bool", "default": False},
        },
        required_by={"record": "record_path"},
        supports_check_mode=True,
    )
    p = module.params
    group, users = p["group"], p["users"]
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
        present, created = [], bool(users)
    added = [u for i, u in enumerate(users) if u not in present and u not in users[:i]]
    removed = [u for u in dict.fromkeys(p["remove"]) if u in present and u not in users]
    if not module.check_mode:
        if created:
            module.run_command(["groupadd", "--system", group], check_rc=True)
        for user in added:
            module.run_command(["gpasswd", "--add", user, group], check_rc=True)
        for user in removed:
            module.run_command(["gpasswd", "--delete", user, group], check_rc=True)
    still = holding(removed, grp.getgrnam(group).gr_gid) if removed else {}
    for user, processes in sorted(still.items()):
        module.warn(
            "%s left the %s group, but %d process(es) that started before keep its access until"
            " they end (a login keeps it until logout): %s."
            % (user, group, len(processes), ", ".join(processes[:10]))
        )
    recorded = False
    if p["record_path"] and p["forget_record"]:
        recorded = remove_file(module, p["record_path"])
    elif p["record_path"] and p["record"] is not None:
        ensure_dir(module, os.path.dirname(p["record_path"]))
        recorded = put(module, p["record_path"], json_bytes(p["record"]))
    module.exit_json(
        changed=bool(created or added or removed or recorded),
        created=created,
        added=added,
        removed=removed,
        still_holding=still,
    )


if __name__ == "__main__":
    main()
