"""The shared model core: span ops, matcher, losses, transformer blocks, data, post-processing."""
