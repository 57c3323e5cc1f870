"""The window objective's residual terms, one small object per file."""
