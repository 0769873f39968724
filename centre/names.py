"""Names that reach Slurm and the ledger: one rule each, for every part that checks them."""

from __future__ import annotations

import re

# A ledger account is a Slurm account of the same name: "u-" + a 32-character login, or
# "course-" + a 31-character slug, fit with room to spare.
ACCOUNT_NAME = re.compile(r"[a-z][a-z0-9_-]{0,62}")

# A POSIX-portable login name, as useradd accepts it by default and Slurm shows it
# (deploy/users.sh checks the same).
UNIX_NAME = re.compile(r"[a-z_][a-z0-9_-]{0,31}")

# A person's role in a course, least to most: the ledger's enrolments and the hub's course
# roles both hold one of these.
COURSE_ROLES = ("student", "ta", "instructor")
