"""Metadata curation: edits as change lists, validation, writers, REMBI, ontology terms, completeness, exports."""
