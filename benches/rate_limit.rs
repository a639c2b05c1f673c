//! Rate-limit layer benches (written in a later commit).

fn main() {}
