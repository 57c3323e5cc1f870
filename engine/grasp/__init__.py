"""Stage 2: backward grasp completion on contact onset."""
