"""Sign-in through the site's OpenID Connect provider: OAuthenticator's generic client, checked.

OAuthenticator 17 exchanges the code (with PKCE) and asks the userinfo endpoint who signed
in, but it never checks the id_token's signature.  This subclass does: the id_token must be
signed with a key from the provider's JWKS, be issued by ``issuer`` for ``client_id`` and
not be expired, and the userinfo answer must be about the same subject.  Anything else is
refused with a 403 page that says why.

An e-mail username must be verified by the provider (``email_verified``).  The account name
comes from the username claim by the rule in ``extensions/courses/identity.py``, is kept per
subject in ``identity_db_url``, and is refused when it is reserved, an admin's, a system
account or, at a first sign-in, an account that already exists (``names.py``).  Admin comes
only from ``provider_admin_groups``: the names in ``admin_users`` cannot sign in at all.

How the groups reach the course code: ``authenticate`` returns an auth model whose
``auth_state`` is ``{"issuer", "sub", "email", "name", "groups", "course_groups"}``: the raw
groups claim as a list, and the groups under ``course_groups_prefix`` with the prefix taken
off, the only ones the course code trusts (no tokens).  JupyterHub hands that model to
``Authenticator.post_auth_hook`` (``hook(authenticator, handler, auth_model)``, which must
return the model) after every successful sign-in; the course code sets that hook to sync
memberships.  ``enable_auth_state`` stays off, so nothing is stored (and no crypt key is
needed): memberships are synced at each sign-in.  ``manage_groups`` stays off too, because
the course code owns the hub's groups.
"""

from __future__ import annotations

import asyncio
from functools import cached_property

import jwt
from oauthenticator.generic import GenericOAuthenticator
from tornado import web
from traitlets import Bool, Integer, List, Set, TraitError, Unicode, default, validate

from centre.people import DEFAULT_MIN_UID, DEFAULT_RESERVED_NAMES, PersonRules, account_of
from extensions.courses.identity import IdentityError
from extensions.sso.claims import (
    ASK_SUPPORT,
    ClaimError,
    auth_state_for,
    checked_claims,
    is_admin,
    require_verified_email,
    verify_id_token,
)
from extensions.sso.identities import IdentityStore
from extensions.sso.names import in_passwd_file, sign_in_refusal


class CorehourOIDCAuthenticator(GenericOAuthenticator):
    """OAuthenticator's generic OAuth 2 client, with id_token verification and Unix names.

    roots/hub.py sets every trait below from the site file's ``auth:`` section
    and the provider's discovery document.
    """

    issuer = Unicode(
        config=True,
        help="""
        The provider's issuer identifier, exactly as its discovery document and its
        id_tokens say it (e.g. ``https://login.uni.example/realms/hpc``).  An id_token with
        another ``iss`` is refused.  Also the first half of the key under which a person's
        account name is kept, so changing it gives everyone new accounts.
        """,
    )

    jwks_url = Unicode(
        config=True,
        help="""
        The provider's JSON Web Key Set (``jwks_uri`` in its discovery document).  The keys
        are fetched on the first sign-in, kept for five minutes, and fetched again when an
        id_token names a key that is not among them (the provider rotated its keys).
        """,
    )

    id_token_algorithms = List(
        Unicode(),
        default_value=["RS256"],
        config=True,
        help="""
        Signature algorithms accepted on id_tokens.  RS256 is the one every OpenID Connect
        provider must support.  Never list an HS* algorithm: those are keyed with the client
        secret, so anyone holding it could mint tokens.
        """,
    )

    groups_claim = Unicode(
        "groups",
        config=True,
        help="""
        The claim (in the id_token or the userinfo answer) that lists the person's groups.
        Missing means no groups; a single string is one group; anything but a list of
        names refuses the sign-in.  The list reaches the course code as
        ``auth_model["auth_state"]["groups"]`` in ``post_auth_hook``.
        """,
    )

    provider_admin_groups = Set(
        Unicode(),
        config=True,
        help="""
        Members of any of these provider groups are hub admins; everyone else is not (an
        admin flag set on the admin page is taken back at their next sign-in).  This is the
        only way to admin through the provider: the names in ``admin_users`` are refused at
        sign-in, so no username claim (``HPCAdmin@anywhere``) can become one of them.  Not
        OAuthenticator's ``admin_groups``, which requires ``manage_groups``: the hub's groups
        belong to the course code.
        """,
    )

    course_groups_prefix = Unicode(
        "corehour:",
        config=True,
        help="""
        Only the provider groups that start with this are course groups; the prefix is taken
        off and the rest handed to the course code as ``auth_state["course_groups"]``
        (``corehour:course-chem101-instructors`` → ``course-chem101-instructors``).  Every
        other group gives no course role, so a group anyone can make at the provider cannot
        make an instructor.  Choose a prefix under which only the centre's identity admins
        can make groups (with Keycloak's full group paths, e.g. ``/corehour/``).
        """,
    )

    min_uid = Integer(
        DEFAULT_MIN_UID,
        config=True,
        help="""
        An existing account with a lower uid (a system account; root is 0) is never given
        to a person at sign-in (site file ``hub.min_uid``).
        """,
    )

    reserved_names = Set(
        Unicode(),
        default_value=set(DEFAULT_RESERVED_NAMES),
        config=True,
        help="""
        Account names never given at sign-in, whatever the username claim says and whatever
        an admin linked (site file ``hub.reserved_names``).  The names in ``admin_users`` are
        refused as well.
        """,
    )

    adopt_directory_accounts = Bool(
        False,
        config=True,
        help="""
        At a first sign-in, an account that already exists is refused (it belongs to someone
        the provider did not name) unless an admin linked it (``python -m
        extensions.sso.assign``).  True lets a first sign-in take an account that only the
        centre's directory (LDAP/SSSD) knows, for centres whose directory holds everyone's
        account under the rule's name; accounts in this machine's /etc/passwd are still
        refused.
        """,
    )

    identity_db_url = Unicode(
        "sqlite:////var/lib/corehour/hub/identities.sqlite",
        config=True,
        help="""
        SQLAlchemy URL of the table that keeps each person's account name, by the
        provider's stable subject (``sub``): one row per (issuer, subject), each name held
        once.  It must survive hub restarts and must not be the hub's own database; the
        default is a SQLite file in the hub's state directory.  Losing it would let a
        second person with a similar username claim take over an account.
        """,
    )

    @validate("course_groups_prefix")
    def _a_prefix(self, proposal):
        if not proposal["value"]:
            raise TraitError("course_groups_prefix: an empty prefix would trust every group")
        return proposal["value"]

    @default("login_service")
    def _login_service_default(self):
        return "your institution"

    @default("username_claim")
    def _username_claim_default(self):
        return "email"

    @default("scope")
    def _scope_default(self):
        return ["openid", "email", "profile", "groups"]

    @cached_property
    def _signing_keys(self) -> jwt.PyJWKClient:
        # The key set is kept five minutes, so a key the provider withdraws stops working
        # then (per-key caching would keep it forever).  No cooldown before fetching again on
        # an unknown kid: id_tokens reach the hub only from the provider's token endpoint, so
        # an unknown kid means the provider rotated its keys, not someone probing.
        return jwt.PyJWKClient(self.jwks_url, lifespan=300, cooldown_duration=0, timeout=10)

    @cached_property
    def _identities(self) -> IdentityStore:
        return IdentityStore(self.identity_db_url)

    def _refused(self, reason: object) -> web.HTTPError:
        self.log.warning("OpenID Connect sign-in refused: %s", reason)
        return web.HTTPError(403, str(reason))

    async def verified_id_claims(self, id_token: str) -> dict:
        """The claims of ``id_token`` once checked against the provider's keys; 403 if not."""
        try:
            signing_key = await asyncio.to_thread(
                self._signing_keys.get_signing_key_from_jwt, id_token
            )
        except jwt.DecodeError:
            raise self._refused(
                f"The identity provider sent an id_token that is not a JWT. {ASK_SUPPORT}"
            ) from None
        except jwt.PyJWKClientError as e:
            raise self._refused(
                f"The sign-in could not be checked against the identity provider's keys ({e}). "
                f"{ASK_SUPPORT}"
            ) from None
        try:
            return verify_id_token(
                id_token,
                signing_key.key,
                issuer=self.issuer,
                client_id=self.client_id,
                algorithms=self.id_token_algorithms,
            )
        except ClaimError as e:
            raise self._refused(e) from None

    async def token_to_user(self, token_info: dict) -> dict:
        id_token = token_info.get("id_token")
        if not id_token:
            raise self._refused(
                "The identity provider sent no id_token; the portal asks for the 'openid' "
                f"scope, so the provider is misconfigured. {ASK_SUPPORT}"
            )
        id_claims = await self.verified_id_claims(id_token)
        userinfo = await super().token_to_user(token_info)
        try:
            claims = checked_claims(id_claims, userinfo, self.groups_claim)
            require_verified_email(claims, self.username_claim)
        except ClaimError as e:
            raise self._refused(e) from None
        return claims

    def user_info_to_username(self, user_info: dict) -> str:
        subject = user_info["sub"]
        try:
            return self._identities.name_for(
                self.issuer, subject, user_info.get(self.username_claim), self.check_name
            )
        except IdentityError as e:
            raise self._refused(f"{e} (subject {subject!r})") from None

    def check_name(self, name: str, first_sign_in: bool) -> None:
        """Raise :class:`IdentityError` when ``name`` may not be given at this sign-in."""
        rules = PersonRules.of(self.min_uid, self.reserved_names, self.admin_users)
        refusal = sign_in_refusal(
            account_of(name),
            rules,
            first_sign_in=first_sign_in,
            # The passwd file matters (and is read) only when directory accounts are adopted.
            in_passwd_file=self.adopt_directory_accounts and in_passwd_file(name),
            adopt_directory_accounts=self.adopt_directory_accounts,
        )
        if refusal is not None:
            raise IdentityError(refusal)

    def build_auth_state_dict(self, token_info: dict, user_info: dict) -> dict:
        return auth_state_for(user_info, self.groups_claim, self.issuer, self.course_groups_prefix)

    async def update_auth_model(self, auth_model: dict) -> dict:
        # Only the provider's groups make an admin; admin_users never sign in this way.
        groups = auth_model["auth_state"]["groups"]
        auth_model["admin"] = is_admin(groups, self.provider_admin_groups)
        return auth_model
