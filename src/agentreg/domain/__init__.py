"""Pure types and rules: names, refs, semver, kinds, documents, digests, errors. No I/O."""
