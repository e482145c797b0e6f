"""Working with a result's parts: explode, the parts list, join and separate, export.

Each module has one job; nothing is imported here, so the importer can use `explode` without
pulling in the panels (which import the importer)."""
