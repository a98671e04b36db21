//! Bulk import and search benchmark (placeholder until the full bench lands).

fn main() {}
