"""The app catalogue: one YAML entry per no-code app, checked against the site when the hub starts.

Each entry says what the app is (slug, title, description, category, icon, help link), its
kind (centre/apps.py: ``voila`` renders ``notebook``, ``lab`` opens ``folder`` in JupyterLab,
``proxy`` opens the web process at ``proxy_path``), where its files live (a folder next to
this file), and how its server starts: an image and a profile of the site, with default
resources that must be a valid spawn request.  A bad
entry is named in the error, so a broken catalogue stops the hub instead of a person's
launch failing later.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from centre.apps import app_server
from centre.options import OptionError, validate_user_options
from centre.site import Site

HERE = Path(__file__).resolve().parent
DEFAULT_CATALOGUE = HERE / "catalogue.yaml"
# Icons are drawn from Font Awesome, which the hub's pages already load.
ICONS = (
    "terminal", "atom", "flask", "microchip", "brain", "chart-line", "cube", "dna",
    "gears", "server", "wave-square", "calculator", "desktop",
)  # fmt: skip

Slug = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{1,30}$")]
HelpUrl = Annotated[str, StringConstraints(pattern=r"^https?://[^\s<>\"']+$", max_length=500)]
Notebook = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_/-]*\.ipynb$")]
Folder = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]*(/[a-z0-9][a-z0-9_-]*)*$")]
ProxyPath = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")]
# What each kind needs: the key that holds its files or its address.
NEEDS = {"voila": "notebook", "lab": "folder", "proxy": "proxy_path"}


class CatalogueError(ValueError):
    """The catalogue is unusable; the message names the app and the key."""


class Resources(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    cores: int | None = None
    memory_gb: int | None = None
    gpus: int | None = None
    walltime_hours: float | None = None


class App(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    slug: Slug
    title: str = Field(min_length=1, max_length=60)
    description: str = Field(min_length=1, max_length=400)
    category: str = Field(min_length=1, max_length=40)
    icon: str = "cube"
    image: str
    profile: str
    resources: Resources = Resources()
    kind: Literal["voila", "lab", "proxy"] = "voila"
    notebook: Notebook | None = None
    folder: Folder | None = None
    proxy_path: ProxyPath | None = None
    help_url: HelpUrl

    @model_validator(mode="after")
    def _what_its_kind_needs(self) -> App:
        needed = NEEDS[self.kind]
        if getattr(self, needed) is None:
            raise ValueError(f"a {self.kind} app needs '{needed}'")
        extra = [key for key in NEEDS.values() if key != needed and getattr(self, key)]
        if extra:
            raise ValueError(f"a {self.kind} app has no '{extra[0]}'; it uses '{needed}'")
        return self

    @property
    def server_name(self) -> str:
        return app_server(self.slug)

    def user_options(self) -> dict[str, object]:
        """The spawn request for this app's server: profile, image and its resources."""
        options: dict[str, object] = {"profile": self.profile, "image": self.image}
        options.update(self.resources.model_dump(exclude_none=True))
        return options


class Catalogue(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    apps: tuple[App, ...]

    def by_slug(self, slug: str) -> App | None:
        return next((app for app in self.apps if app.slug == slug), None)

    def categories(self) -> dict[str, list[App]]:
        grouped: dict[str, list[App]] = {}
        for app in self.apps:
            grouped.setdefault(app.category, []).append(app)
        return grouped


def check_against_site(catalogue: Catalogue, site: Site, root: Path = HERE) -> None:
    """Every app names a real profile and image, a valid request, and existing files."""
    seen: set[str] = set()
    for app in catalogue.apps:
        where = f"apps.{app.slug}"
        if app.slug in seen:
            raise CatalogueError(f"{where}.slug: '{app.slug}' is listed twice")
        seen.add(app.slug)
        if app.icon not in ICONS:
            raise CatalogueError(f"{where}.icon: '{app.icon}' is not one of {', '.join(ICONS)}")
        if app.profile not in site.profiles:
            raise CatalogueError(
                f"{where}.profile: no profile '{app.profile}'; the site has {sorted(site.profiles)}"
            )
        try:
            validate_user_options(app.user_options(), site)
        except OptionError as e:
            raise CatalogueError(f"{where}.{_field(e.field)}: {e.reason}") from None
        if app.kind == "voila":
            notebook = (root / app.notebook).resolve()
            if root.resolve() not in notebook.parents or not notebook.is_file():
                raise CatalogueError(
                    f"{where}.notebook: {app.notebook} does not exist under {root}"
                )
        if app.kind == "lab":
            folder = (root / app.folder).resolve()
            if root.resolve() not in folder.parents or not folder.is_dir():
                raise CatalogueError(f"{where}.folder: {app.folder} is no folder under {root}")


def _field(option: str) -> str:
    return option if option in ("image", "profile") else f"resources.{option}"


def parse_catalogue(
    data: object, site: Site, source: str = "<catalogue>", root: Path = HERE
) -> Catalogue:
    if not isinstance(data, dict):
        raise CatalogueError(f"The app catalogue {source} must be a YAML mapping with 'apps'.")
    try:
        catalogue = Catalogue.model_validate(data)
    except ValidationError as e:
        raise CatalogueError(_format(e, data, source)) from None
    check_against_site(catalogue, site, root)
    return catalogue


def load_catalogue(path: str | Path, site: Site) -> Catalogue:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as e:
        raise CatalogueError(f"Cannot read the app catalogue {path}: {e.strerror}.") from None
    except yaml.YAMLError as e:
        raise CatalogueError(f"The app catalogue {path} is not valid YAML: {e}") from None
    return parse_catalogue(data, site, str(path), path.parent)


def _format(error: ValidationError, data: dict, source: str) -> str:
    """Name apps by slug, not list index: 'apps.lammps.image' reads better than 'apps.1.image'."""
    lines = [f"The app catalogue {source} is not valid:"]
    apps = data.get("apps") if isinstance(data.get("apps"), list) else []
    for item in error.errors():
        loc = list(item["loc"])
        if len(loc) > 1 and loc[0] == "apps" and isinstance(loc[1], int) and loc[1] < len(apps):
            entry = apps[loc[1]]
            if isinstance(entry, dict) and isinstance(entry.get("slug"), str):
                loc[1] = entry["slug"][:32]
        key = ".".join(str(part) for part in loc) or "(top level)"
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key"
        lines.append(f"  - {key}: {message}")
    return "\n".join(lines)
