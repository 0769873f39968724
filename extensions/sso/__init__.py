"""Single sign-on through an OpenID Connect provider (issue 5; docs/sso.md).

| file | job |
|---|---|
| ``discovery.py`` | read and check the provider's ``.well-known/openid-configuration`` |
| ``claims.py`` | pure checks of what the provider sent: the id_token, its subject, the groups |
| ``identities.py`` | the provider's stable subject → Unix account name, kept in SQLite |
| ``names.py`` | which names a sign-in may give: never reserved, admin, system or others' |
| ``assign.py`` | the admin's command that links a subject to an existing account |
| ``secret_file.py`` | read the client secret from a file only root can read |
| ``oidc.py`` | the JupyterHub authenticator that puts these together |

The account-name rule itself lives in ``extensions/courses/identity.py``.
"""
