"""Transfer with checksums, manifests, BagIt bags and fixity checks."""
