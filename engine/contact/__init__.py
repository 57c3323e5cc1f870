"""Contact lifting (2D mask overlap -> 3D points on the object) and contact detection."""
