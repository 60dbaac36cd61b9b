"""Packaging bundles for Android (.ort files, golden vectors, Kotlin client). Not built yet."""
