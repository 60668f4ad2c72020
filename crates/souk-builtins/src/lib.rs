//! souk's built-in open APIs, the CPU side: mini-program codes (`wxacode`), code scanning (`scan`),
//! smart crop and super-resolution, with decoding limits (`image_input`) and the bounded blocking pool
//! all of this work runs on (`pool`).
//!
//! **Architecture invariant:** no HTTP and no SQL here; every function is pure over bytes and images,
//! and every call from async code goes through [`pool`], never straight onto the async runtime.

pub mod crop;
pub mod esrgan;
pub mod image_input;
pub mod pool;
pub mod scan;
pub mod superres;
pub mod wxacode;
