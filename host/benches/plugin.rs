//! Plugin runtime benchmarks (being written).
fn main() {}
