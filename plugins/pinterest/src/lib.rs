//! Pinterest destination (being written).
