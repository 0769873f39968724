"""Link a person at the identity provider to an existing account, on purpose (docs/sso.md).

A first sign-in never takes an account that already exists (``extensions/sso/names.py``).
When such an account is that person's, an admin links it to their subject, running this as
the user the hub runs as (so the table stays the hub's)::

    /opt/corehour/hub/bin/python -m extensions.sso.assign \\
        --db sqlite:////var/lib/corehour/hub/identities.sqlite \\
        https://login.uni.example/realms/hpc 3f6c…-subject anna

From then on that subject signs in as ``anna``.  Reserved, admin and system names are still
refused at sign-in, so a link cannot make anyone root or an admin.
"""

from __future__ import annotations

import argparse
import sys

from centre.names import UNIX_NAME
from extensions.courses.identity import IdentityError
from extensions.sso.identities import IdentityStore

DEFAULT_DB = "sqlite:////var/lib/corehour/hub/identities.sqlite"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--db", default=DEFAULT_DB, help=f"the identity table (default {DEFAULT_DB})"
    )
    parser.add_argument("issuer", help="auth.issuer of the site file, exactly")
    parser.add_argument("subject", help="the person's 'sub' claim (the hub logs it at a refusal)")
    parser.add_argument("username", help="the existing account to give them")
    args = parser.parse_args(argv)
    if not UNIX_NAME.fullmatch(args.username):
        print(f"{args.username!r} is not a Unix account name", file=sys.stderr)
        return 2
    try:
        before = IdentityStore(args.db).assign(args.issuer, args.subject, args.username)
    except IdentityError as e:
        print(f"not linked: {e}", file=sys.stderr)
        return 1
    was = f" (was {before})" if before and before != args.username else ""
    print(f"{args.subject} of {args.issuer} now signs in as {args.username}{was}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
