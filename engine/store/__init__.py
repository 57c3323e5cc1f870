"""The Zarr result store: schema, writer, reader."""

from .reader import HandTrack, Result, Snapshot, open_result
from .schema import SCHEMA_VERSION, ArraySpec, core_specs, timing_spec
from .writer import WRITE_GROUP, StoreWriter, read_root_attrs

__all__ = ["SCHEMA_VERSION", "WRITE_GROUP", "ArraySpec", "HandTrack", "Result", "Snapshot", "StoreWriter",
           "core_specs", "open_result", "read_root_attrs", "timing_spec"]
