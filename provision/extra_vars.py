"""``-e`` values checked like ``[docker]``: the role's contract over every ``docker_*`` name.

ansible-core itself reads the ``-e`` items (:mod:`provision.ansible_probe`: ``@FILE``, inline
YAML/JSON, ``KEY=VALUE`` where VALUE is a string). A role option's value is then converted as the
role's argument spec converts it (``docker_users=ops,ci`` is a list of two users,
``docker_live_restore=yes`` is true) and checked; a name that is not an option of the role but
looks like one (``users``, ``docker_userz``) is refused with the option it probably means.
Other names (connection variables such as ``ansible_user``) pass through unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

from provision.ansible_probe import ExtraVars
from provision.errors import SettingsError
from provision.role_options import ROLE_PREFIX, RoleContract, did_you_mean, show

# How close a name without the role's prefix must be to an option to be taken for a typo of it.
_TYPO_CUTOFF: Final = 0.85


def _option_meant(contract: RoleContract, name: str) -> str | None:
    """The role option a name without the ``docker_`` prefix stands for, if it is one."""
    if ROLE_PREFIX + name in contract.options:
        return ROLE_PREFIX + name
    return did_you_mean(name, contract.names, cutoff=_TYPO_CUTOFF)


def _check(contract: RoleContract, name: str, value: Any, *, where: str, from_text: bool) -> Any:
    if not name.startswith(ROLE_PREFIX):
        meant = _option_meant(contract, name)
        if meant:
            raise SettingsError(
                f"{where}: not an option of the docker role (did you mean {meant}?)"
            )
        return value
    if name not in contract.options:
        contract.unknown(name, where=where)
    if from_text and contract.option_type(name) == "list" and str(value).lstrip()[:1] == "[":
        raise SettingsError(
            f"{where} = {show(value)}: KEY=VALUE gives a string, as in ansible-playbook; "
            f'for a list write -e {name}=a,b or -e \'{{"{name}": ["a", "b"]}}\''
        )
    return contract.validate(name, value, where=where)


def check_extra_vars(items: Iterable[ExtraVars], *, contract: RoleContract) -> dict[str, Any]:
    """The variables of all ``-e`` items (later ones win), role options validated and
    converted."""
    result: dict[str, Any] = {}
    for item in items:
        for name, value in item.variables.items():
            where = f"-e {name}" if item.from_text else f"-e {item.item}: {name}"
            result[name] = _check(contract, name, value, where=where, from_text=item.from_text)
    return result
