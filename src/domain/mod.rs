//! The CIM rules (pure: no I/O, no clock reads).
