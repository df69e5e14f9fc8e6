"""`python -m bot.locales`: refresh `messages.pot` and merge it into every catalog.

New keys arrive untranslated (members see English until someone translates them); keys the
code no longer uses are dropped; existing translations are kept.
"""

from __future__ import annotations

from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po, write_po

from bot.core.i18n import CATALOGS, DOMAIN, LOCALES_DIR, forms
from bot.locales.keys import catalog_keys


def template() -> Catalog:
    catalog = Catalog(project="seedream-discord-bot", domain=DOMAIN)
    for key in catalog_keys().values():
        catalog.add((key.msgid, key.plural) if key.plural else key.msgid, locations=[(key.where, 0)])
    return catalog


def main() -> None:
    pot = template()
    pot_path = LOCALES_DIR / f"{DOMAIN}.pot"
    if pot_path.exists():
        with pot_path.open("rb") as existing:
            previous = read_po(existing)
        if [m.id for m in previous if m.id] == [m.id for m in pot if m.id]:
            pot.creation_date = previous.creation_date  # unchanged texts: unchanged files (merge-friendly)
    with pot_path.open("wb") as out:
        write_po(out, pot, width=0, omit_header=False, sort_output=False)
    for directory in CATALOGS.values():
        path = LOCALES_DIR / directory / "LC_MESSAGES" / f"{DOMAIN}.po"
        if path.exists():
            with path.open("rb") as existing:
                catalog = read_po(existing, locale=directory)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            catalog = Catalog(locale=directory, project="seedream-discord-bot", domain=DOMAIN)
        catalog.update(pot, no_fuzzy_matching=True)
        with path.open("wb") as out:
            write_po(out, catalog, width=0, ignore_obsolete=True, include_previous=False)
        done = sum(1 for message in catalog if message.id and all(forms(message.string)))
        print(f"{path.relative_to(LOCALES_DIR)}: {done} of {len(pot)} translated")


if __name__ == "__main__":
    main()
