"""`ledger serve [--host] [--port]` and `ledger user add NAME --role ROLE [--staff-id ID]`."""

from __future__ import annotations

import argparse
import sys

from services import users
from services.settings import Settings
from services.staff import staff_signer
from services.station import Station
from signing.errors import InputError, LedgerError


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("serve", help="serve the HTTP API (/api/v1, /docs) and the pages")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.set_defaults(handler=cmd_serve)

    p = subparsers.add_parser("user", help="users of the HTTP API and pages")
    sub = p.add_subparsers(dest="user_command", required=True)
    add = sub.add_parser(
        "add",
        help="add a user (password read from stdin when piped, else generated and printed once)",
    )
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=users.ROLES)
    add.add_argument(
        "--staff-id",
        help="the staff certificate that signs this user's actions (staff and quality users)",
    )
    add.set_defaults(handler=cmd_user_add)
    ls = sub.add_parser("list", help="list users and roles")
    ls.set_defaults(handler=cmd_user_list)


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from api.web import create_app

    if not 0 < args.port < 65536:
        raise InputError(f"port {args.port} is not between 1 and 65535")
    app = create_app(settings, stamp=True)
    print(f"ledger: serving http://{args.host}:{args.port}/ (API docs at /docs)", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0


def _password_from_stdin() -> str | None:
    """The password piped on stdin (its first line); None on a terminal or an empty stdin
    (then one is generated and printed once)."""
    if sys.stdin is None or sys.stdin.isatty():
        return None
    line = sys.stdin.readline().rstrip("\r\n")
    return line or None


def cmd_user_add(settings: Settings, args: argparse.Namespace) -> int:
    password = _password_from_stdin()
    with Station.open(settings) as station:

        def known(staff_id: str) -> bool:
            try:
                staff_signer(station, staff_id)
            except LedgerError:
                return False
            return True

        store = users.UserStore(settings.db)
        added = users.add_user(
            store, users.AddUser(args.name, args.role, password, args.staff_id), known
        )
    print(f"Added user {added.user.username} (role {added.user.role})")
    if added.generated_password is not None:
        print(f"Password (shown once): {added.generated_password}")
    return 0


def cmd_user_list(settings: Settings, args: argparse.Namespace) -> int:
    for user in users.UserStore(settings.db).users():
        print(f"{user.username}\t{user.role}\t{user.staff_id or ''}")
    return 0
