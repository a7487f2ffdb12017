//! Cleaning stages: edits of the text that keep the document (markers and boilerplate out,
//! content in), each recording what it removed as counts.

pub mod markdown;
