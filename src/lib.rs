//! curate engine.
