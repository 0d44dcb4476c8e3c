"""The schema's own state: the newest applied migration and the oldest code it still serves."""

from __future__ import annotations

from tenrusl.compat import Compatibility
from tenrusl.store.base import StoreBase


class SchemaQueries(StoreBase):
    async def schema_version(self) -> str | None:
        row = await self.fetch_one("schema_version")
        return row["version"] if row else None

    async def compatibility(self) -> Compatibility:
        """What the schema serves; a schema from before migration 0013 serves every version."""
        async with self.connection() as conn:
            present = await self.fetch_one("compatibility_table_present", conn=conn)
            if not present or not present["present"]:
                return Compatibility(None)
            row = await self.fetch_one("oldest_code_version", conn=conn)
        return Compatibility(row["oldest_code_version"], row["set_by"]) if row else Compatibility(None)
