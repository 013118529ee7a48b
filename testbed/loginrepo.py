"""A private mirror of the test bed's repository: the same files, served only to a client that
logs in with HTTP Basic authentication, as a company's authenticated apt mirror does. Each
request is logged as one JSON line (path, status, the user it logged in as), so tests can prove
who fetched what. The login is read from the environment (PROVISION_TESTBED_LOGIN=USER:PASSWORD),
never from the command line, where ps shows it.

    python -m testbed.loginrepo --bind ADDRESS --port PORT --log FILE
"""

from __future__ import annotations

import argparse
import base64
import binascii
import functools
import hmac
import json
import os
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

LOGIN_VARIABLE = "PROVISION_TESTBED_LOGIN"


class LoginHandler(SimpleHTTPRequestHandler):
    login = ""
    log_path = Path("/dev/null")

    def user(self) -> str | None:
        """The user the request logged in as, or None without the right login."""
        scheme, _, encoded = (self.headers.get("Authorization") or "").partition(" ")
        if scheme != "Basic":
            return None
        try:
            given = base64.b64decode(encoded, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return given.partition(":")[0] if hmac.compare_digest(given, self.login) else None

    def send_head(self) -> Any:
        user = self.user()
        self.record(user)
        if user is None:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="provision test bed"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        return super().send_head()

    def record(self, user: str | None) -> None:
        line = json.dumps({"path": self.path, "user": user, "authorized": user is not None})
        with self.log_path.open("a", encoding="utf-8") as log:
            log.write(line + "\n")

    def log_message(self, format: str, *args: Any) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bind", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--directory", type=Path, required=True)
    args = parser.parse_args()
    login = os.environ.get(LOGIN_VARIABLE, "")
    if ":" not in login:
        parser.error(f"{LOGIN_VARIABLE} must be USER:PASSWORD")
    handler = type("Handler", (LoginHandler,), {"login": login, "log_path": args.log})
    served = functools.partial(handler, directory=str(args.directory))
    ThreadingHTTPServer((args.bind, args.port), served).serve_forever()


if __name__ == "__main__":
    main()
