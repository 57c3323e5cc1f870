"""The Zarr result store: schema, writer, reader."""

from .reader import HandTrack, Result, open_result
from .schema import SCHEMA_VERSION, ArraySpec, core_specs, timing_spec
from .writer import StoreWriter, read_root_attrs

__all__ = ["SCHEMA_VERSION", "ArraySpec", "HandTrack", "Result", "StoreWriter", "core_specs", "open_result",
           "read_root_attrs", "timing_spec"]
