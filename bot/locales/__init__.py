"""The gettext catalogs (`<locale>/LC_MESSAGES/messages.po`) and the tool that keeps them current.

`python -m bot.locales` collects every key the code uses (see `catalog_keys`) into
`messages.pot` and merges it into each catalog, keeping existing translations.
"""
