"""A name -> record table (core.families, core.datasets): registration order kept, unknown names refused in words."""

from __future__ import annotations


class Registry(dict):
    def __init__(self, what: str):
        super().__init__()
        self.what = what  # "model", "dataset": how an unknown name is reported

    def register(self, record):
        """Add a record (or replace the one of the same name); returns it."""
        self[record.name] = record
        return record

    def unregister(self, name: str) -> None:
        self.pop(name, None)

    def record(self, name: str):
        if name not in self:
            raise ValueError(f"unknown {self.what} {name!r}; choose one of {sorted(self)}")
        return self[name]

    def names(self) -> list[str]:
        return list(self)
