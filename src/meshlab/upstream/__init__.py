"""The upstream stage: the upstream projects' own sources and programs, at the versions the book
pins, fetched from their published Go modules into Go's caches (never into the repository), so that
tests and chapters check meshlab against the real thing.

    versions   the pinned modules and what each stands for
    source     where a pinned module's source is (downloading it with ``go mod download``)
"""
