"""CommerceML (1C ↔ site exchange) source: hardened streaming parser and exchange-package discovery.

``parser`` turns one XML file into ``(entity, record)`` pairs; ``package`` finds, fingerprints and
orders the files of a directory or zip and streams them. See ``README.md`` for the format notes.
"""
